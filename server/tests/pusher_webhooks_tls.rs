//! Pusher webhooks to `https://` URLs (docs/pusher-webhooks.md#https): a real ringcast POSTs
//! to a small HTTPS receiver on a free loopback port (std `TcpListener` + rustls
//! `ServerConnection`, certificates made here with rcgen: a test CA and leaves it signs). The
//! receiver checks each POST's key and signature as a Pusher SDK does, and reports each TLS
//! handshake that failed; the tests wait on those reports (no sleeps).
//!
//! Trusted through `--pusher-webhook-ca`, the POST arrives signed, with SNI; a CA the server
//! does not trust and a certificate for another name get nothing: each attempt fails its
//! handshake, is counted under `reason="tls"` and retried with the backoff, and the failure is
//! logged once.

mod common;
#[path = "common/webhook_post.rs"]
mod webhook_post;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{PUSHER_APP, READ_TIMEOUT, Server};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{Value, json};
use tungstenite::Message;

use common::json::{Ws, recv};
use webhook_post::{Post, read_post};

/// Longest wait for something the server does on its own (a retry comes after 1 s).
const WAIT: Duration = Duration::from_secs(20);

/// A CA made for one test, its PEM file in a temporary directory.
struct Ca {
    dir: PathBuf,
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-hooktls-{}-{}",
            std::process::id(),
            common::rand_u32()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write CA");
        Ca { dir, key, cert }
    }

    fn pem_path(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// A receiver's configuration: a leaf for `names`, signed by this CA.
    fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names = names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.signed_by(&key, &self.cert, &self.key).expect("leaf");
        let chain = vec![
            leaf.der().clone(),
            CertificateDer::from(self.cert.der().to_vec()),
        ];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .expect("server config");
        Arc::new(config)
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the receiver saw on one connection.
enum Seen {
    /// A POST after a good handshake: the number of its connection, the SNI name sent, the
    /// key exchange group, whether the handshake resumed an earlier session, whether key and
    /// signature held, its events.
    Post {
        conn: usize,
        sni: Option<String>,
        group: Option<rustls::NamedGroup>,
        resumed: bool,
        signed: bool,
        events: Vec<Value>,
    },
    /// The handshake failed (the server refused the certificate).
    HandshakeFailed(String),
}

/// An HTTPS receiver on a free port serving `config`, keeping its connections open after
/// an answer when `keep` (else `Connection: close`): its port and what it sees.
fn receiver(config: Arc<ServerConfig>, keep: bool) -> (u16, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for (n, tcp) in listener.incoming().flatten().enumerate() {
            let tx = tx.clone();
            let config = config.clone();
            // A kept connection waits for its next POST while the next one may be accepted.
            std::thread::spawn(move || serve(&config, tcp, n, keep, |seen| tx.send(seen).is_ok()));
        }
    });
    (port, rx)
}

/// Serves connection number `n`: the handshake, then POSTs while `keep` and `report` takes
/// what it sees.
fn serve(
    config: &Arc<ServerConfig>,
    tcp: TcpStream,
    n: usize,
    keep: bool,
    report: impl Fn(Seen) -> bool,
) {
    let failed = |e: &dyn std::fmt::Display| Seen::HandshakeFailed(e.to_string());
    if let Err(e) = tcp.set_read_timeout(Some(READ_TIMEOUT)) {
        report(failed(&e));
        return;
    }
    let conn = match ServerConnection::new(config.clone()) {
        Ok(c) => c,
        Err(e) => {
            report(failed(&e));
            return;
        }
    };
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            report(failed(&e));
            return;
        }
    }
    let sni = tls.conn.server_name().map(str::to_owned);
    let resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let group = tls.conn.negotiated_key_exchange_group().map(|g| g.name());
    // A kept connection ends when the server drops it (or at the read timeout).
    while let Some(Post { signed, events }) = read_post(&mut tls, keep) {
        let seen = Seen::Post {
            conn: n,
            sni: sni.clone(),
            group,
            resumed,
            signed,
            events,
        };
        if !report(seen) || !keep {
            return;
        }
    }
}

/// The server with the test app, its webhook at `url`, `extra` flags and `env`.
fn server_with_env(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = PUSHER_APP.to_vec();
    args.extend(["--pusher-webhook-url", url]);
    args.extend(extra);
    Server::start_with_env(&args, env)
}

fn server(url: &str, extra: &[&str]) -> Server {
    server_with_env(url, extra, &[])
}

/// Subscribes `ws` to the public `channel`: the first subscriber, so `channel_occupied`.
fn subscribe(ws: &mut Ws, channel: &str) {
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string())).expect("send");
    assert_eq!(recv(ws)["event"], "pusher_internal:subscription_succeeded");
}

/// A Pusher client subscribed to the public channel `chat` (the `channel_occupied` webhook);
/// the connection, to keep it occupied.
fn occupy(s: &Server) -> Ws {
    let stream = TcpStream::connect(&s.addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{}/app/key1?protocol=7", s.addr);
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).expect("handshake");
    assert_eq!(recv(&mut ws)["event"], "pusher:connection_established");
    subscribe(&mut ws, "chat");
    ws
}

/// The next POST: (its connection's number, SNI, resumed, the channel of its one
/// `channel_occupied` event).
fn occupied_post(seen: &Receiver<Seen>) -> (usize, Option<String>, bool, Value) {
    match seen.recv_timeout(WAIT).expect("a POST") {
        Seen::Post {
            conn,
            sni,
            group,
            resumed,
            signed,
            events,
        } => {
            assert!(signed, "key and signature hold");
            // Not secp384r1, first in rustls' ring defaults and twice as costly.
            assert_eq!(group, Some(rustls::NamedGroup::X25519));
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(events[0]["name"], "channel_occupied");
            (conn, sni, resumed, events[0]["channel"].clone())
        }
        Seen::HandshakeFailed(e) => panic!("handshake failed: {e}"),
    }
}

#[test]
fn a_webhook_reaches_an_https_receiver_signed_through_a_private_ca() {
    let ca = Ca::new("ringcast webhook test CA");
    let (port, seen) = receiver(ca.server_config(&["localhost"]), false);
    let url = format!("https://localhost:{port}/hooks");
    let s = server(&url, &["--pusher-webhook-ca", &ca.pem_path()]);
    let mut ws = occupy(&s);
    let (conn, sni, resumed, channel) = occupied_post(&seen);
    assert_eq!(
        sni.as_deref(),
        Some("localhost"),
        "SNI names the URL's host"
    );
    assert!(!resumed, "the first POST's handshake is a full one");
    assert_eq!((conn, channel), (0, "chat".into()));
    // This receiver closes each connection after its answer: the next POST's connection
    // resumes the TLS session.
    subscribe(&mut ws, "chat-2");
    let (conn, sni, resumed, channel) = occupied_post(&seen);
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(resumed, "the second POST resumes the TLS session");
    assert_eq!((conn, channel), (1, "chat-2".into()));
    let sent = "ringcast_webhook_events_total{app=\"1\",result=\"sent\"}";
    assert!(common::proc::poll_until(WAIT, || s.metric(sent) == 2));
    assert_eq!(
        s.metric("ringcast_webhook_request_failures_total{app=\"1\",reason=\"tls\"}"),
        0
    );
}

#[test]
fn a_receiver_that_keeps_its_connection_gets_the_next_post_on_it() {
    let ca = Ca::new("ringcast webhook test CA");
    let (port, seen) = receiver(ca.server_config(&["localhost"]), true);
    let url = format!("https://localhost:{port}/hooks");
    let s = server(&url, &["--pusher-webhook-ca", &ca.pem_path()]);
    let mut ws = occupy(&s);
    let (conn, _, _, channel) = occupied_post(&seen);
    assert_eq!((conn, channel), (0, "chat".into()));
    subscribe(&mut ws, "chat-2");
    let (conn, _, _, channel) = occupied_post(&seen);
    assert_eq!((conn, channel), (0, "chat-2".into()), "no new connection");
}

/// The receiver at `url`'s port sees only failed handshakes; the server counts them under
/// `reason="tls"`, retries, and logs the failure once, naming `why`.
fn refused_and_retried(s: &Server, seen: &Receiver<Seen>, why: &str) {
    let _ws = occupy(s);
    for attempt in 1..=2 {
        match seen.recv_timeout(WAIT).expect("an attempt") {
            Seen::HandshakeFailed(_) => {}
            Seen::Post { .. } => panic!("attempt {attempt} got through"),
        }
    }
    let tls = "ringcast_webhook_request_failures_total{app=\"1\",reason=\"tls\"}";
    assert!(
        common::proc::poll_until(WAIT, || s.metric(tls) >= 2),
        "two TLS failures counted: {}",
        s.metric(tls)
    );
    assert!(s.metric("ringcast_webhook_retries_total{app=\"1\"}") >= 2);
    assert_eq!(
        s.metric("ringcast_webhook_events_total{app=\"1\",result=\"sent\"}"),
        0
    );
    let log = s.stderr();
    let warned: Vec<_> = log
        .lines()
        .filter(|l| l.contains("webhook TLS failure"))
        .collect();
    assert_eq!(warned.len(), 1, "logged once for two failures: {log}");
    assert!(
        warned[0].contains(why),
        "the reason is named: {}",
        warned[0]
    );
}

#[test]
fn a_receiver_signed_by_an_untrusted_ca_gets_nothing_and_the_failures_are_counted() {
    let trusted = Ca::new("the CA the server trusts");
    let other = Ca::new("a CA nobody trusts");
    let (port, seen) = receiver(other.server_config(&["localhost"]), false);
    let url = format!("https://localhost:{port}/hooks");
    // The CA from the environment this time.
    let ca = trusted.pem_path();
    let s = server_with_env(&url, &[], &[("RINGCAST_PUSHER_WEBHOOK_CA", &ca)]);
    refused_and_retried(&s, &seen, "UnknownIssuer");
}

#[test]
fn a_certificate_for_another_name_gets_nothing_and_the_failures_are_counted() {
    let ca = Ca::new("ringcast webhook test CA");
    let (port, seen) = receiver(ca.server_config(&["hooks.example"]), false);
    let url = format!("https://localhost:{port}/hooks");
    // The CA from the config file this time: were it not read, the failure would be
    // UnknownIssuer.
    let config = ca.dir.join("ringcast.toml");
    let toml = format!("pusher_webhook_ca = {:?}\n", ca.pem_path());
    std::fs::write(&config, toml).expect("write config");
    let s = server(&url, &["--config", &config.display().to_string()]);
    refused_and_retried(&s, &seen, "not valid for name");
}

#[test]
fn without_the_ca_flag_only_the_system_roots_are_trusted() {
    let ca = Ca::new("a private CA not in the system store");
    let (port, seen) = receiver(ca.server_config(&["localhost"]), false);
    let s = server(&format!("https://localhost:{port}/hooks"), &[]);
    refused_and_retried(&s, &seen, "UnknownIssuer");
}

#[test]
fn a_missing_or_empty_ca_file_stops_the_start_with_exit_2() {
    let ca = Ca::new("unused");
    let empty = ca.dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let empty = empty.display().to_string();
    for file in ["/nonexistent/ringcast-ca.pem", empty.as_str()] {
        let mut args = PUSHER_APP.to_vec();
        args.extend(["--listen", "127.0.0.1:0"]);
        args.extend(["--pusher-webhook-url", "https://localhost:9/hooks"]);
        args.extend(["--pusher-webhook-ca", file]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(&args)
            .output()
            .expect("run ringcast");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(file), "the error names the file: {err}");
    }
}
