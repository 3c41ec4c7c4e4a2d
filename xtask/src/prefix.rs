//! A child's output shown as ours, each line behind the child's name:
//!
//! ```text
//! room-service-50051 | INFO room_service: listening on 127.0.0.1:50051
//! gateway-3001       | INFO gateway: listening on 127.0.0.1:3001
//! ```
//!
//! Each line leaves in a single write to our stdout, whose lock keeps lines of
//! different children from interleaving. A line longer than [`MAX_LINE`]
//! bytes is cut into several, so a child printing without newlines cannot make
//! us hold an unbounded buffer.

use std::io::{self, IsTerminal, Write};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The longest piece of a line shown at once; the rest follows on new lines.
pub const MAX_LINE: usize = 16 * 1024;

/// Foreground colours for names, in order: cyan, yellow, green, magenta,
/// blue, then their bright versions. Red is left for trouble.
const PALETTE: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// How names are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Colour names (our stdout is a terminal and `NO_COLOR` is not set).
    pub color: bool,
    /// Pad names to this many characters, so the `|` line up.
    pub width: usize,
}

impl Style {
    /// Colour when stdout is a terminal and the user has not asked for none
    /// (<https://no-color.org>).
    pub fn detect(width: usize) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Self { color: io::stdout().is_terminal() && !no_color, width }
    }

    /// The text put before each line of the `index`-th process called `name`.
    pub fn label(&self, name: &str, index: usize) -> String {
        let width = self.width;
        if self.color {
            let color = PALETTE[index % PALETTE.len()];
            format!("\x1b[{color}m{name:<width$} |\x1b[0m ")
        } else {
            format!("{name:<width$} | ")
        }
    }

    /// The label for this tool's own messages.
    pub fn own_label(&self) -> String {
        let width = self.width;
        let name = "xtask";
        if self.color { format!("\x1b[1m{name:<width$} |\x1b[0m ") } else { format!("{name:<width$} | ") }
    }
}

/// Copies `reader` to `out` line by line, each behind `label`, until end of
/// input; returns `out`. A last line without a newline gets one.
pub async fn copy_prefixed<R, W>(reader: R, label: &str, mut out: W) -> io::Result<W>
where
    R: AsyncRead + Unpin,
    W: Write,
{
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if !line.is_empty() {
                emit(&mut out, label, &line)?;
            }
            return Ok(out);
        }
        let room = MAX_LINE - line.len();
        let (taken, ends_line) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len().min(room), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if ends_line || line.len() == MAX_LINE {
            emit(&mut out, label, &line)?;
            line.clear();
        }
    }
}

fn emit<W: Write>(out: &mut W, label: &str, line: &[u8]) -> io::Result<()> {
    let mut whole = Vec::with_capacity(label.len() + line.len() + 1);
    whole.extend_from_slice(label.as_bytes());
    whole.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        whole.push(b'\n');
    }
    out.write_all(&whole)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn prefixed(input: &[u8]) -> String {
        let out = copy_prefixed(input, "gw | ", Vec::new()).await.expect("copy to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn every_line_gets_the_label() {
        assert_eq!(prefixed(b"one\ntwo\n\nfour\n").await, "gw | one\ngw | two\ngw | \ngw | four\n");
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_shown_and_ended() {
        assert_eq!(prefixed(b"one\npartial").await, "gw | one\ngw | partial\n");
    }

    #[tokio::test]
    async fn nothing_in_nothing_out() {
        assert_eq!(prefixed(b"").await, "");
    }

    #[tokio::test]
    async fn an_overlong_line_is_cut_into_bounded_pieces() {
        let input = format!("{}\nnext\n", "x".repeat(MAX_LINE * 2 + 10));

        let output = prefixed(input.as_bytes()).await;

        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 4, "three pieces and the next line");
        assert_eq!(lines[0].len(), "gw | ".len() + MAX_LINE);
        assert_eq!(lines[1].len(), "gw | ".len() + MAX_LINE);
        assert_eq!(lines[2], "gw | xxxxxxxxxx");
        assert_eq!(lines[3], "gw | next");
    }

    #[tokio::test]
    async fn lines_split_across_reads_are_joined() {
        let (mut tx, rx) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in ["hel", "lo wor", "ld\nbye", "\n"] {
                tx.write_all(piece.as_bytes()).await.expect("write");
                tokio::task::yield_now().await;
            }
        });

        let out = copy_prefixed(rx, "gw | ", Vec::new()).await.expect("copy");
        writer.await.expect("writer");

        assert_eq!(String::from_utf8(out).expect("utf-8"), "gw | hello world\ngw | bye\n");
    }

    #[test]
    fn labels_line_up_and_colour_only_when_asked() {
        let plain = Style { color: false, width: 12 };
        assert_eq!(plain.label("gateway-3000", 0), "gateway-3000 | ");
        assert_eq!(plain.label("redis-6380", 1), "redis-6380   | ");

        let colored = Style { color: true, width: 10 };
        assert_eq!(colored.label("redis-6380", 0), "\x1b[36mredis-6380 |\x1b[0m ");
        assert_eq!(colored.label("a", PALETTE.len()), colored.label("a", 0), "colours cycle");
    }
}
