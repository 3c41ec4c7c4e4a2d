//! How a connection whose socket read failed is closed, and how a close is
//! made to reach the browser.
//!
//! A read fails on a frame the WebSocket protocol forbids, and the code says
//! which (RFC 6455 §7.4.1): text that is not UTF-8 → 1007; a frame over the
//! size limit → 1009; any other breach of the protocol (reserved bits or
//! opcodes, a continuation with nothing to continue, an unmasked client
//! frame, a fragmented or oversized control frame) → 1002. A connection that
//! simply went away gets nothing.
//!
//! After such an error the socket cannot be read any more (its frames are
//! out of step), yet the browser may still be sending. Closing the TCP
//! connection with unread bytes in it sends a reset, which can destroy our
//! Close frame before the browser reads it; so the session waits a moment
//! before dropping the socket, and the browser reads the close code every
//! time.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

/// Every close code the gateway sends, with the reason it gives
/// (`docs/protocol.md`, "Close codes", tables them; a test checks both agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCode {
    /// 1002: a frame broke the WebSocket protocol.
    ProtocolError,
    /// 1007: a text frame was not UTF-8.
    InvalidUtf8,
    /// 1009: a frame over [`crate::limits::MAX_FRAME_BYTES`].
    TooBig,
    /// 1012: the gateway is draining (after a `reconnect` frame).
    Restart,
    /// 4008: [`crate::limits::QUEUE_FRAMES`] frames were waiting to be written.
    SlowConsumer,
    /// 4009: the session was resumed on another connection; this one is done.
    SessionMoved,
    /// 4010: nothing heard from the browser (no frame, no pong) for 2 × `PING_SECS`.
    Timeout,
}

impl CloseCode {
    #[cfg(test)]
    pub(crate) const ALL: [CloseCode; 7] = [
        Self::ProtocolError,
        Self::InvalidUtf8,
        Self::TooBig,
        Self::Restart,
        Self::SlowConsumer,
        Self::SessionMoved,
        Self::Timeout,
    ];

    /// The number on the wire.
    pub(crate) const fn code(self) -> u16 {
        match self {
            Self::ProtocolError => 1002,
            Self::InvalidUtf8 => 1007,
            Self::TooBig => 1009,
            Self::Restart => 1012,
            Self::SlowConsumer => 4008,
            Self::SessionMoved => 4009,
            Self::Timeout => 4010,
        }
    }

    /// The reason the Close frame carries, for a person reading it.
    pub(crate) const fn reason(self) -> &'static str {
        match self {
            Self::ProtocolError => "WebSocket protocol violation: send JSON text frames",
            Self::InvalidUtf8 => "text frame is not valid UTF-8",
            Self::TooBig => "frame over 64 KiB",
            Self::Restart => "gateway restarting: reconnect",
            Self::SlowConsumer => "slow consumer: too many frames waiting",
            Self::SessionMoved => "session resumed on another connection",
            Self::Timeout => "timeout: nothing heard for 2 × PING_SECS",
        }
    }
}

/// The close code for a failed socket read; `None` when the browser is
/// simply gone (nothing to say, nobody to say it to).
pub(crate) fn close_for_read_error(error: &(dyn std::error::Error + 'static)) -> Option<CloseCode> {
    let ws = std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<WsError>())?;
    match ws {
        WsError::Utf8(_) => Some(CloseCode::InvalidUtf8),
        WsError::Capacity(_) => Some(CloseCode::TooBig),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) | WsError::AttackAttempt => Some(CloseCode::ProtocolError),
        _ => None,
    }
}

/// Whether a failed write means the browser had already closed the
/// connection itself (the socket read its Close frame while writing): a
/// departure, not a connection that vanished.
pub(crate) fn closed_by_peer(error: &(dyn std::error::Error + 'static)) -> bool {
    let ws = std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<WsError>());
    matches!(
        ws,
        Some(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Protocol(ProtocolError::SendAfterClosing))
    )
}

/// After our Close is sent: waits up to `wait` for the browser's Close.
/// When the stream can no longer be read (it failed, or ended without a
/// Close), the rest of `wait` is spent holding the socket open, so our
/// Close frame is read before the connection is dropped.
pub(crate) async fn await_close<R, M, E>(stream: &mut R, wait: Duration, is_close: impl Fn(&M) -> bool)
where
    R: Stream<Item = Result<M, E>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    let answered = async {
        loop {
            match stream.next().await {
                Some(Ok(message)) if is_close(&message) => return,
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break,
            }
        }
        tokio::time::sleep_until(deadline).await;
    };
    let _ = tokio::time::timeout_at(deadline, answered).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    #[test]
    fn a_write_after_the_browser_closed_is_a_departure_not_a_drop() {
        for (error, closed) in [
            (WsError::ConnectionClosed, true),
            (WsError::AlreadyClosed, true),
            (WsError::Protocol(ProtocolError::SendAfterClosing), true),
            (WsError::Io(std::io::ErrorKind::BrokenPipe.into()), false),
            (WsError::Io(std::io::ErrorKind::ConnectionReset.into()), false),
        ] {
            let text = error.to_string();
            assert_eq!(closed_by_peer(&axum::Error::new(error)), closed, "{text}");
        }
    }

    #[test]
    fn each_read_error_gets_its_code() {
        let cases: Vec<(WsError, Option<u16>)> = vec![
            (WsError::Utf8("invalid".into()), Some(1007)),
            (WsError::Capacity(CapacityError::MessageTooLong { size: 200_000, max_size: 131_072 }), Some(1009)),
            (WsError::Protocol(ProtocolError::NonZeroReservedBits), Some(1002)),
            (WsError::Protocol(ProtocolError::UnknownDataFrameType(3)), Some(1002)),
            (WsError::Protocol(ProtocolError::UnexpectedContinueFrame), Some(1002)),
            (WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake), None),
            (WsError::ConnectionClosed, None),
            (WsError::Io(std::io::ErrorKind::ConnectionReset.into()), None),
        ];
        for (error, code) in cases {
            let text = error.to_string();
            // As the session sees it: wrapped in axum's error.
            let wrapped = axum::Error::new(error);
            assert_eq!(close_for_read_error(&wrapped).map(CloseCode::code), code, "{text}");
        }
    }

    #[test]
    fn the_protocol_doc_tables_exactly_the_close_codes_we_send() {
        let doc = include_str!("../../docs/protocol.md");
        let section = doc.split("## Close codes").nth(1).expect("docs/protocol.md has a Close codes section");
        let mut documented: Vec<u16> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| row.split('|').nth(1)?.trim().parse().ok())
            .filter(|&code| code != 1000) // a browser's own normal close
            .collect();
        let mut ours: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        documented.sort_unstable();
        ours.sort_unstable();
        assert_eq!(documented, ours);
    }
}
