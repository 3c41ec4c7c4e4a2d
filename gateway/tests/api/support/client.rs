//! Clients that talk to the servers under test as browsers and operators
//! do: the WebSocket browser protocol and plain HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::PATIENCE;

/// A plain HTTP/1.0 GET: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect for HTTP");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("write request");
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response))
        .await
        .expect("HTTP answer in time")
        .expect("read response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Reads one sample of a Prometheus text exposition: the sum over lines
/// whose name and labels contain every one of `parts`.
pub fn metric(text: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#') && parts.iter().all(|p| line.contains(p)))
        .filter_map(|line| line.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The texts of the `message` frames among `frames`.
pub fn texts(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Reads `n` message frames for `room` (skipping notices), failing if a
/// message of another room comes in between.
pub async fn messages(client: &mut Client, room: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = client.next_where(|f| f["type"] == "message").await;
        assert_eq!(frame["room"], room, "a message from another room leaked in: {frame}");
        got.push(frame);
    }
    got
}

/// The member named `username` in a `joins` or `leaves` list.
fn entry(list: &Value, username: &str) -> Option<Value> {
    list.as_array()?.iter().find(|m| m["username"] == username).cloned()
}

/// A WebSocket client speaking the browser protocol.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub gateway: String,
    /// The `welcome` frame the connection opened with.
    pub welcome: Value,
    /// The `rooms` snapshot the gateway sends unasked after `welcome`,
    /// once it has come: [`Client::next`] keeps it here rather than hand
    /// it to tests reading frames one by one; [`Client::snapshot`] waits
    /// for it.
    rooms: Option<Value>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_to(addr, "").await
    }

    /// Opens `/ws` + `query` and reads the welcome, failing the test if the
    /// gateway refuses.
    pub async fn connect_to(addr: SocketAddr, query: &str) -> Self {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}")).await.expect("websocket connects");
        let mut client = Self { ws, gateway: String::new(), welcome: Value::Null, rooms: None };
        let welcome = client.next_of("welcome").await;
        client.gateway = welcome["gateway"].as_str().expect("welcome names the gateway").to_owned();
        client.welcome = welcome;
        client
    }

    /// Reconnects as the session `session` (`/ws?session=`), on gateway `addr`.
    pub async fn resume(addr: SocketAddr, session: &str) -> Self {
        Self::connect_to(addr, &format!("?session={session}")).await
    }

    /// The `rooms` snapshot that follows the welcome, waiting for it if it
    /// has not come yet (frames before it are skipped: call this before
    /// anything else that reads). Fails on an `error` instead.
    pub async fn snapshot(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.rooms.is_none() {
            let frame = tokio::time::timeout_at(deadline, self.next_frame()).await.expect("a rooms snapshot in time");
            match frame["type"].as_str() {
                Some("rooms") => self.rooms = Some(frame),
                Some("error") => panic!("no rooms snapshot: {frame}"),
                _ => {}
            }
        }
        self.rooms.clone().unwrap_or_default()
    }

    /// The `welcome` this connection began with.
    pub fn welcome(&self) -> &Value {
        &self.welcome
    }

    /// This connection's `user_id` (from `welcome`).
    pub fn user_id(&self) -> String {
        self.welcome["user_id"].as_str().expect("welcome carries a user_id").to_owned()
    }

    /// The session token the welcome gave this connection.
    pub fn session(&self) -> String {
        self.welcome["session"].as_str().expect("welcome carries a session token").to_owned()
    }

    /// Ends the connection the way a lost network or a killed tab does: the
    /// TCP connection goes, with no Close frame first.
    pub fn vanish(self) {
        drop(self.ws);
    }

    /// Opens `/ws` + `query` (e.g. `?token=…`) with an `Origin` header when
    /// given: the client after the welcome, or the HTTP status and body the
    /// upgrade was refused with.
    pub async fn try_connect(addr: SocketAddr, query: &str, origin: Option<&str>) -> Result<Self, (u16, String)> {
        let origin: Vec<(&str, &str)> = origin.map(|origin| ("origin", origin)).into_iter().collect();
        Self::try_connect_with(addr, query, &origin).await
    }

    /// [`Self::try_connect`] with any request headers (e.g. what a proxy adds).
    pub async fn try_connect_with(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, (u16, String)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderName;
        let mut request = format!("ws://{addr}/ws{query}").into_client_request().expect("a valid request");
        for (name, value) in headers {
            let name: HeaderName = name.parse().expect("a valid header name");
            request.headers_mut().append(name, value.parse().expect("a valid header"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => {
                let mut client = Self { ws, gateway: String::new(), welcome: Value::Null, rooms: None };
                let welcome = client.next_of("welcome").await;
                client.gateway = welcome["gateway"].as_str().unwrap_or_default().to_owned();
                client.welcome = welcome;
                Ok(client)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
                Err((response.status().as_u16(), body.unwrap_or_default()))
            }
            Err(error) => panic!("websocket connect failed without an HTTP answer: {error}"),
        }
    }

    /// The next Close frame's code, skipping other frames; `None` when the
    /// connection ends without one.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a close within PATIENCE") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The raw socket, for tests that break the protocol.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::Text(frame.to_string().into())).await.expect("send frame");
    }

    /// Sends `frames` in one write, so the gateway reads them all at once
    /// (as it does from a browser sending faster than a round trip).
    pub async fn send_together(&mut self, frames: Vec<Message>) {
        for frame in frames {
            self.ws.feed(frame).await.expect("queue frame");
        }
        self.ws.flush().await.expect("send frames");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send frame");
    }

    /// The next message of any kind, within PATIENCE.
    pub async fn next_message(&mut self) -> Option<Message> {
        match tokio::time::timeout(PATIENCE, self.ws.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(_) => None,
            Err(_) => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// The next JSON text frame (but the first `rooms` frame: see `rooms`).
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = self.next_frame().await;
            if self.rooms.is_none() && frame["type"] == "rooms" {
                self.rooms = Some(frame);
                continue;
            }
            return frame;
        }
    }

    async fn next_frame(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Message::Text(text)) => return serde_json::from_str(&text).expect("frames are JSON"),
                Some(Message::Close(close)) => panic!("connection closed: {close:?}"),
                Some(_) => {}
                None => panic!("connection ended"),
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        self.next_where(|f| f["type"] == kind).await
    }

    /// Skips frames until one matches.
    pub async fn next_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let frame =
                tokio::time::timeout_at(deadline, self.next()).await.expect("the wanted frame did not come in time");
            if wanted(&frame) {
                return frame;
            }
        }
    }

    /// Skips frames until a `presence` frame says `username` joined; returns
    /// that member.
    pub async fn next_join_of(&mut self, username: &str) -> Value {
        let frame = self.next_where(|f| f["type"] == "presence" && entry(&f["joins"], username).is_some()).await;
        entry(&frame["joins"], username).expect("matched above")
    }

    /// Skips frames until a `presence` frame says `username` left; returns
    /// that leave (the member, with `reason`).
    pub async fn next_leave_of(&mut self, username: &str) -> Value {
        let frame = self.next_where(|f| f["type"] == "presence" && entry(&f["leaves"], username).is_some()).await;
        entry(&frame["leaves"], username).expect("matched above")
    }

    /// Frames that arrive within `quiet`, all of them.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.ws.next()).await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                if self.rooms.is_none() && frame["type"] == "rooms" {
                    self.rooms = Some(frame); // as `next` does
                    continue;
                }
                frames.push(frame);
            }
        }
        frames
    }

    /// Every JSON frame that arrives in the next `period` (reading, so pings
    /// are answered); fails if the connection ends.
    pub async fn frames_for(&mut self, period: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + period;
        let mut frames = Vec::new();
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.next()).await {
            frames.push(frame);
        }
        frames
    }

    /// Joins a room and returns the `joined` frame.
    pub async fn join(&mut self, room: &str, username: &str) -> Value {
        self.send(json!({"type": "join", "room": room, "username": username})).await;
        let frame = self.next_where(|f| f["type"] == "joined" || f["type"] == "error").await;
        assert_eq!(frame["type"], "joined", "join {room} as {username}: {frame}");
        frame
    }

    /// Joins a room resuming from `after_seq` of `epoch`; returns the
    /// `joined` frame.
    pub async fn join_after(&mut self, room: &str, username: &str, after_seq: u64, epoch: &str) -> Value {
        self.send(json!({"type": "join", "room": room, "username": username, "after_seq": after_seq, "epoch": epoch}))
            .await;
        let frame = self.next_where(|f| f["type"] == "joined" || f["type"] == "error").await;
        assert_eq!(frame["type"], "joined", "join {room} as {username} after {after_seq}: {frame}");
        frame
    }

    /// The first page of a joined room's members (the `members` reply).
    pub async fn members(&mut self, room: &str) -> Value {
        self.send(json!({"type": "members", "room": room})).await;
        let frame = self.next_where(|f| f["type"] == "members" || f["type"] == "error").await;
        assert_eq!(frame["type"], "members", "members of {room}: {frame}");
        frame
    }

    pub async fn say(&mut self, room: &str, text: &str) {
        self.send(json!({"type": "send", "room": room, "text": text})).await;
    }

    /// Closes the connection like a tab being closed.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
