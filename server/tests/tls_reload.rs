//! Certificate reload (docs/running.md#tls) against the real binary: SIGHUP and
//! `--tls-reload-interval` load a renewed pair for new connections while open ones go on, and
//! `/metrics` shows the certificate's expiry (`ringcast_tls_certificate_expiry_seconds`).
#![allow(missing_docs)]

mod common;
mod tls_common;

use std::net::TcpStream;
use std::time::Duration;

use rustls::ClientConnection;
use rustls::StreamOwned;
use rustls::pki_types::ServerName;
use tungstenite::Message;

use common::READ_TIMEOUT;
use tls_common::*;

/// Whether a client that trusts only `cert` completes a handshake with `server`.
fn handshake_trusting(server: &TlsServer, cert: &Cert) -> bool {
    let name = ServerName::try_from("localhost").unwrap();
    let tcp = TcpStream::connect(&server.tls_addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let config = cert.client_config(rustls::DEFAULT_VERSIONS);
    let conn = ClientConnection::new(config, name).unwrap();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        if s.conn.complete_io(&mut s.sock).is_err() {
            return false;
        }
    }
    true
}

#[test]
fn sighup_reloads_a_renewed_certificate_for_new_connections() {
    let server = TlsServer::start(&[]);
    let renewed = Cert::new();
    let mut before = server.wss("r");
    std::fs::copy(renewed.cert(), server.cert.cert()).unwrap();
    std::fs::copy(renewed.key(), server.cert.key()).unwrap();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGHUP);
    }
    // A client that trusts only the renewed certificate gets through once the reload is done.
    assert!(
        common::proc::poll_until(Duration::from_secs(5), || handshake_trusting(
            &server, &renewed
        )),
        "the renewed certificate was never served"
    );
    // The connection opened before the reload keeps its session and is still served.
    let mut plain = server.ws("r");
    plain.send(Message::text("hello")).unwrap();
    assert_eq!(before.read().unwrap(), Message::text("hello"));
}

#[test]
fn metrics_show_the_certificate_expiry_and_the_interval_reloads_a_changed_pair() {
    let server = TlsServer::start(&["--tls-reload-interval", "0.1"]);
    let expiry = "ringcast_tls_certificate_expiry_seconds";
    assert_eq!(server.metric(expiry), server.cert.not_after);
    let mut before = server.wss("r");
    let renewed = Cert::until(2051, 12, 31);
    assert_ne!(renewed.not_after, server.cert.not_after);
    std::fs::copy(renewed.cert(), server.cert.cert()).unwrap();
    std::fs::copy(renewed.key(), server.cert.key()).unwrap();
    // No signal: the next check sees the files changed.
    let reloaded = || server.metric(expiry) == renewed.not_after;
    assert!(
        common::proc::poll_until(Duration::from_secs(5), reloaded),
        "expiry still {}",
        server.metric(expiry)
    );
    assert!(handshake_trusting(&server, &renewed));
    assert!(
        !handshake_trusting(&server, &server.cert),
        "the old pair is gone"
    );
    let mut plain = server.ws("r");
    plain.send(Message::text("still here")).unwrap();
    assert_eq!(before.read().unwrap(), Message::text("still here"));
    // A broken pair is refused and the one in use stays.
    std::fs::write(server.cert.key(), "not a key").unwrap();
    std::fs::write(server.cert.cert(), "not a certificate either").unwrap();
    let other = Cert::new();
    let refused = common::proc::poll_until(Duration::from_secs(1), || {
        server.metric(expiry) != renewed.not_after
    });
    assert!(!refused, "a broken pair replaced the one in use");
    assert!(handshake_trusting(&server, &renewed));
    assert!(!handshake_trusting(&server, &other));
}

#[test]
fn without_tls_no_expiry_is_shown() {
    let server = common::Server::start(&[]);
    let expiry = server.metric_lines("ringcast_tls_certificate_expiry_seconds");
    assert!(expiry.is_empty(), "{expiry:?}");
    assert!(
        !server
            .metric_lines("ringcast_tls_handshakes_total")
            .is_empty(),
        "page read"
    );
}
