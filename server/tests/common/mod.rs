//! Starts the real `ringcast` binary on an ephemeral port and offers clients to talk to it.
#![allow(dead_code, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ringcast_protocol::frame::{OpCode, encode_masked_frame};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

pub mod json;
pub mod proc;
pub mod resp;

/// Time any single read may take before a test fails instead of hanging.
/// The Pusher app every Pusher test uses: id 1, key `key1`, secret `secret1`.
pub const PUSHER_APP: [&str; 6] = [
    "--pusher-app-id",
    "1",
    "--pusher-app-key",
    "key1",
    "--pusher-app-secret",
    "secret1",
];

pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    pub child: Child,
    pub addr: String,
    stderr_path: std::path::PathBuf,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::try_start(args, env, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server, optionally with its open-file limit set to `(soft, hard)`; returns
    /// why when it exits before printing its listening line (a refused flag, for instance).
    pub fn try_start(
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<(u64, u64)>,
    ) -> Result<Server, String> {
        let dir = std::env::temp_dir().join(format!("ringcast-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stderr_path = dir.join(format!("stderr-{}.log", rand_u32()));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RINGCAST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some((soft, hard)) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("start ringcast");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        if !line.starts_with("ringcast listening on ws://") {
            let _ = child.kill();
            let status = child.wait().ok();
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            return Err(format!(
                "ringcast {args:?} did not start ({status:?}); stdout {line:?}; stderr:\n{err}"
            ));
        }
        let addr = line
            .split("ws://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Ok(Server {
            child,
            addr,
            stderr_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Every line of /metrics whose name (labels included) starts with `prefix`.
    pub fn metric_lines(&self, prefix: &str) -> Vec<(String, u64)> {
        let body = self.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| {
                let (name, v) = l.rsplit_once(' ')?;
                Some((name.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// A tungstenite client that offers `room` as its subprotocol.
    pub fn join(&self, room: Option<&str>) -> WebSocket<TcpStream> {
        let mut req = self.url().into_client_request().unwrap();
        if let Some(room) = room {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(room).unwrap(),
            );
        }
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, resp) = tungstenite::client(req, stream).expect("handshake");
        if let Some(room) = room {
            assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], room);
        }
        ws
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }

    /// A raw HTTP exchange: sends `request`, returns everything until the server closes.
    pub fn http(&self, request: &[u8]) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn metric(&self, name: &str) -> u64 {
        let body = self.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    }

    /// Waits until this cluster node's bus links are all up (`ringcast_cluster_up` 1). A node
    /// prints its listening line once connected to Redis, or after 5 s without it
    /// (docs/cluster.md#starting), and what it publishes while a link is still connecting is
    /// dropped, so a test on a loaded machine makes sure. Waits up to 30 s: an event awaited
    /// costs nothing when it comes early.
    pub fn wait_cluster_up(&self) {
        let up = proc::poll_until(Duration::from_secs(30), || {
            self.metric("ringcast_cluster_up") == 1
        });
        assert!(up, "ringcast_cluster_up never became 1 within 30 s");
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A flooded log can be large; the test has read what it needed by now.
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

pub fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish() as u32
}

/// A raw client after a successful upgrade, for frames tungstenite refuses to send.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub fn upgrade_request(room: Option<&str>, extra: &[u8]) -> Vec<u8> {
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n".to_vec();
    if let Some(room) = room {
        req.extend_from_slice(format!("Sec-WebSocket-Protocol: {room}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(extra);
    req
}

impl Raw {
    /// Upgrades with `extra` bytes pipelined right after the request head.
    pub fn connect(server: &Server, room: Option<&str>, extra: &[u8]) -> (Raw, String) {
        Raw::connect_with(server, &upgrade_request(room, extra))
    }

    /// Sends `request` verbatim and reads the response head.
    pub fn connect_with(server: &Server, request: &[u8]) -> (Raw, String) {
        Raw::handshake(TcpStream::connect(&server.addr).unwrap(), request)
    }

    /// Sends `request` on an already connected `stream` and reads the response head.
    pub fn handshake(mut stream: TcpStream, request: &[u8]) -> (Raw, String) {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.write_all(request).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "closed during handshake: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        (Raw { stream, buf }, head)
    }

    pub fn send_frame(&mut self, op: OpCode, fin: bool, payload: &[u8]) {
        let mut out = Vec::new();
        encode_masked_frame(&mut out, op, fin, payload, [1, 2, 3, 4]);
        self.stream.write_all(&out).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn fill(&mut self, need: usize) -> bool {
        let mut chunk = [0u8; 65536];
        while self.buf.len() < need {
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// Reads one server frame: (opcode, payload); `None` when the connection ended.
    pub fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        self.read_frame_b0().map(|(b0, p)| (b0 & 0x0f, p))
    }

    /// Reads one server frame: (its first byte: FIN, RSV bits and opcode; payload).
    pub fn read_frame_b0(&mut self) -> Option<(u8, Vec<u8>)> {
        if !self.fill(2) {
            return None;
        }
        assert_eq!(self.buf[1] & 0x80, 0, "server frames are never masked");
        let (len, at) = match self.buf[1] & 0x7f {
            126 => {
                self.fill(4);
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                self.fill(10);
                (
                    u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                    10,
                )
            }
            n => (n as usize, 2),
        };
        if !self.fill(at + len) {
            return None;
        }
        let op = self.buf[0];
        let payload = self.buf[at..at + len].to_vec();
        self.buf.drain(..at + len);
        Some((op, payload))
    }

    /// Reads frames until a Close; returns its code.
    pub fn expect_close(&mut self) -> u16 {
        loop {
            match self.read_frame() {
                Some((0x8, p)) => {
                    assert!(p.len() >= 2, "close without a code");
                    return u16::from_be_bytes([p[0], p[1]]);
                }
                Some(_) => continue,
                None => panic!("connection ended without a Close frame"),
            }
        }
    }

    /// After a Close, the server ends the TCP connection.
    pub fn expect_eof(&mut self) {
        let mut b = [0u8; 1024];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("expected EOF, got {e}"),
            }
        }
    }
}

pub fn text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("read a message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}
