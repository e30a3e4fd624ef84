//! What the TLS tests share: a certificate made at test time (rcgen), the server with a TLS
//! and a plain listener, rustls and tungstenite clients, `/metrics` reads.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use crate::common;
use crate::common::READ_TIMEOUT;

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
pub struct Cert {
    pub dir: PathBuf,
    pub der: CertificateDer<'static>,
    /// Its notAfter, unix seconds.
    pub not_after: u64,
}

impl Cert {
    pub fn new() -> Cert {
        Cert::until(2040, 6, 1)
    }

    /// One valid until `year-month-day` 00:00 UTC.
    pub fn until(year: i32, month: u8, day: u8) -> Cert {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-tls-{}-{}",
            std::process::id(),
            common::rand_u32()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let not_after = params.not_after.unix_timestamp() as u64;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Cert {
            der: cert.der().clone(),
            not_after,
            dir,
        }
    }

    /// A leaf for `localhost` signed by a test CA made here (both written as PEM; `ca.pem`
    /// is the CA), for clients that check the chain as a browser does (openssl, Node).
    pub fn with_ca() -> Cert {
        let mut cert = Cert::new();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ringcast test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2040, 6, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(cert.dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(cert.dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(cert.dir.join("ca.pem"), ca.pem()).unwrap();
        cert.der = ca.der().clone();
        cert
    }

    /// The test CA's PEM file (only for [`Cert::with_ca`]).
    pub fn ca(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    pub fn cert(&self) -> String {
        self.dir.join("cert.pem").display().to_string()
    }

    pub fn key(&self) -> String {
        self.dir.join("key.pem").display().to_string()
    }

    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server with TLS on `--listen` and a plain `--plain-listen` beside it.
pub struct TlsServer {
    pub child: Child,
    pub tls_addr: String,
    pub plain_addr: String,
    pub cert: Cert,
}

impl TlsServer {
    pub fn start(args: &[&str]) -> TlsServer {
        TlsServer::start_with(Cert::new(), args)
    }

    /// The server with `cert` as its certificate.
    pub fn start_with(cert: Cert, args: &[&str]) -> TlsServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(["--listen", "127.0.0.1:0", "--plain-listen", "127.0.0.1:0"])
            .args(["--tls-cert", &cert.cert(), "--tls-key", &cert.key()])
            .args(["--workers", "2"])
            .args(args)
            .env("RINGCAST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        // "ringcast listening on wss://A/ and ws://B/ (2 workers)"
        let addr = |scheme: &str| {
            line.split(scheme)
                .nth(1)
                .and_then(|s| s.split('/').next())
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                .to_string()
        };
        let (tls_addr, plain_addr) = (addr(" wss://"), addr(" ws://"));
        TlsServer {
            child,
            tls_addr,
            plain_addr,
            cert,
        }
    }

    /// A TLS stream to the TLS listener, handshake done.
    pub fn tls(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> Tls {
        let tcp = TcpStream::connect(&self.tls_addr).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(self.cert.client_config(versions), name).unwrap();
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        s
    }

    /// A wss:// client in `room` (its subprotocol).
    pub fn wss(&self, room: &str) -> WebSocket<Tls> {
        let stream = self.tls(rustls::DEFAULT_VERSIONS);
        let mut req = "wss://localhost/".into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(room).unwrap(),
        );
        let (ws, resp) = tungstenite::client(req, stream).expect("wss handshake");
        assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], room);
        ws
    }

    /// A ws:// client on the plain listener in `room`.
    pub fn ws(&self, room: &str) -> WebSocket<TcpStream> {
        let stream = TcpStream::connect(&self.plain_addr).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut req = "ws://localhost/".into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(room).unwrap(),
        );
        tungstenite::client(req, stream).expect("ws handshake").0
    }

    /// An HTTP/1.1 exchange over TLS: everything until the server's close_notify.
    pub fn https(
        &self,
        request: &[u8],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (String, Tls) {
        let mut s = self.tls(versions);
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        // rustls reports a close without close_notify as an error: the server sends one.
        s.read_to_end(&mut out)
            .expect("the answer, then close_notify");
        (String::from_utf8_lossy(&out).into_owned(), s)
    }

    /// `ringcast_tls_handshake_failures_total{reason="<reason>"}`, read on the plain listener.
    pub fn failures(&self, reason: &str) -> u64 {
        self.metric(&format!(
            "ringcast_tls_handshake_failures_total{{reason=\"{reason}\"}}"
        ))
    }

    pub fn metric(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(&self.plain_addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    }

    /// Waits until `reason` was counted `n` times.
    pub fn await_failures(&self, reason: &str, n: u64) {
        let ok = common::proc::poll_until(Duration::from_secs(5), || self.failures(reason) >= n);
        assert!(
            ok,
            "{reason} counted {} times, want {n}",
            self.failures(reason)
        );
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    loop {
        match ws.read().expect("read a message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads until the server closes the TCP connection (EOF or reset) within the read timeout.
pub fn expect_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("expected the server to close, got {e} after {all:?}"),
        }
    }
}

/// Two members of one room still talk (the hostile cases must not disturb them).
pub fn room_still_works(a: &mut WebSocket<Tls>, b: &mut WebSocket<TcpStream>, what: &str) {
    a.send(Message::text(format!("after {what}"))).unwrap();
    assert_eq!(text(b), format!("after {what}"));
    b.send(Message::text(format!("reply after {what}")))
        .unwrap();
    assert_eq!(text(a), format!("reply after {what}"));
}
