//! How a session ends: the close frame it sends, and how it leaves its
//! rooms (at once, after the resume grace, or not at all).

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::FutureExt;

use chat_proto::LeaveReason;

use crate::closing::CloseCode;
use crate::limits::{CLOSE_WAIT, WRITE_STALL};

/// How the session ended: the close frame to send, and how it leaves its rooms.
pub(super) enum End {
    /// The browser closed the socket itself: nothing to send; it leaves.
    Closed,
    /// The browser vanished (the socket failed) or stopped reading: nothing
    /// can be sent; it may come back.
    Gone,
    /// Closed with this code.
    Close(CloseCode),
}

/// How a session that ended leaves its rooms.
pub(super) enum Departure {
    /// At once, for this reason.
    Now(LeaveReason),
    /// After the resume grace, unless its session resumes on another connection.
    Grace,
    /// Not at all: another connection holds its session now.
    Stay,
}

impl End {
    /// For the `chat_gateway_sessions_ended_total` metric.
    pub(super) fn how(&self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Gone => "gone",
            End::Close(CloseCode::SlowConsumer) => "slow_consumer",
            End::Close(CloseCode::Restart) => "drained",
            End::Close(CloseCode::SessionMoved) => "session_moved",
            End::Close(CloseCode::Timeout) => "timeout",
            End::Close(CloseCode::ProtocolError | CloseCode::InvalidUtf8 | CloseCode::TooBig) => "protocol_error",
        }
    }

    pub(super) fn departure(&self) -> Departure {
        match self {
            End::Closed => Departure::Now(LeaveReason::Disconnected),
            End::Gone => Departure::Grace,
            End::Close(CloseCode::SlowConsumer | CloseCode::Restart) => Departure::Grace,
            End::Close(CloseCode::SessionMoved) => Departure::Stay,
            End::Close(CloseCode::Timeout) => Departure::Now(LeaveReason::Timeout),
            End::Close(CloseCode::ProtocolError | CloseCode::InvalidUtf8 | CloseCode::TooBig) => {
                Departure::Now(LeaveReason::Disconnected)
            }
        }
    }
}

/// How a failed write ends the session: a browser that closed the socket
/// itself (its Close frame is read, or waiting to be) leaves at once; one
/// that vanished gets the resume grace.
pub(super) fn write_failed(socket: &mut WebSocket, error: &axum::Error) -> End {
    if crate::closing::closed_by_peer(error) {
        return End::Closed;
    }
    match socket.recv().now_or_never() {
        Some(Some(Ok(Message::Close(_)))) => End::Closed,
        _ => End::Gone,
    }
}

/// A write that made no progress for [`WRITE_STALL`]: the browser is not
/// reading. Nothing more can be sent to it; it may come back and resume.
pub(super) fn stalled(conn: u64) -> End {
    tracing::info!(conn, "write stalled for {WRITE_STALL:?}; dropping the connection");
    End::Gone
}

/// How a failed socket read ends the session: a close code for a broken
/// frame (1007, 1002, 1009), nothing when the browser is simply gone.
pub(super) fn read_failed(conn: u64, error: &axum::Error) -> End {
    tracing::debug!(conn, %error, "socket read failed");
    match crate::closing::close_for_read_error(error) {
        Some(code) => End::Close(code),
        None => End::Gone,
    }
}

/// Sends the Close frame and waits (briefly) for the browser's answering
/// Close before the socket is dropped: dropping at once (the process may
/// exit right after a drain) can reset the connection before our last
/// frames leave, and the browser would see 1006 instead of the reconnect
/// notice.
pub(super) async fn close(mut socket: WebSocket, code: CloseCode) {
    let close = Message::Close(Some(CloseFrame { code: code.code(), reason: Utf8Bytes::from_static(code.reason()) }));
    if socket.send(close).await.is_ok() {
        crate::closing::await_close(&mut socket, CLOSE_WAIT, |m| matches!(m, Message::Close(_))).await;
    }
}
