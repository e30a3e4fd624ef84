//! Handshakes a TLS server must refuse or serve with care (docs/running.md#tls,
//! docs/metrics.md#tls), against the real binary: a server name (SNI) that is no host name, two
//! names, a valid name our certificate does not cover, and a client certificate we never asked
//! for. Each refusal is the alert RFC 8446 / RFC 6066 name, counted under its own `reason` in
//! `ringcast_tls_handshake_failures_total`, and the clients around it notice nothing.
#![allow(missing_docs)]

mod common;
mod tls_common;

use std::io::Write;
use std::net::TcpStream;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use common::READ_TIMEOUT;
use tls_common::*;

/// Alert descriptions (RFC 8446 §6).
const UNEXPECTED_MESSAGE: u8 = 10;
const ILLEGAL_PARAMETER: u8 = 47;
const DECODE_ERROR: u8 = 50;

/// A TLS 1.2 ClientHello record (one ECDHE-RSA/ECDSA AES-GCM suite, null compression) with
/// these raw extensions.
fn client_hello(extensions: &[u8]) -> Vec<u8> {
    let mut hello = vec![0x03, 0x03];
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2f, 0xc0, 0x2b]);
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(extensions);
    handshake_record(0x01, &hello)
}

/// One handshake message of `kind` in one plaintext record.
fn handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut record = vec![0x16, 0x03, 0x03];
    record.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    record.push(kind);
    record.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    record.extend_from_slice(body);
    record
}

/// A server_name extension (RFC 6066 §3) listing these host_name entries.
fn server_names(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for name in names {
        list.push(0); // host_name
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut ext = vec![0x00, 0x00];
    ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&list);
    ext
}

/// Sends `bytes` on a new connection and returns the server's fatal alert description (the
/// answer must be one plaintext alert record, then the close).
fn fatal_alert_for(s: &TlsServer, bytes: &[u8]) -> u8 {
    let mut tcp = TcpStream::connect(&s.tls_addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    fatal_alert_for_on(&mut tcp, bytes)
}

#[test]
fn a_server_name_that_is_no_host_name_is_refused_with_an_alert() {
    let s = TlsServer::start(&[]);
    let mut a = s.wss("calm");
    let mut b = s.ws("calm");
    let bad = fatal_alert_for(&s, &client_hello(&server_names(&[b"bad name!"])));
    assert_eq!(bad, ILLEGAL_PARAMETER);
    s.await_failures("server_name", 1);
    let two = fatal_alert_for(
        &s,
        &client_hello(&server_names(&[b"a.example", b"b.example"])),
    );
    assert_eq!(two, DECODE_ERROR);
    s.await_failures("server_name", 2);
    assert_eq!(s.failures("peer_misbehaved"), 0);
    assert_eq!(s.failures("bad_record"), 0);
    room_still_works(&mut a, &mut b, "bad server names");
}

#[test]
fn a_host_name_the_certificate_does_not_cover_gets_the_certificate_and_the_client_refuses_it() {
    let s = TlsServer::start(&[]);
    let mut a = s.wss("calm");
    let mut b = s.ws("calm");
    let name = ServerName::try_from("other.example").unwrap();
    let config = s.cert.client_config(rustls::DEFAULT_VERSIONS);
    let mut conn = ClientConnection::new(config, name).unwrap();
    let mut tcp = TcpStream::connect(&s.tls_addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let refused = loop {
        match conn.complete_io(&mut tcp) {
            Err(e) => break e,
            Ok(_) if !conn.is_handshaking() => panic!("a certificate for localhost was accepted"),
            Ok(_) => {}
        }
    };
    // The server went on with its one certificate (RFC 6066 §3 allows it); the client's own
    // check is what refuses the name, and its alert is what the server counts.
    let text = refused.to_string();
    assert!(
        text.contains("NotValidForName") || text.contains("not valid for name"),
        "{text}"
    );
    let _ = conn.complete_io(&mut tcp); // the client's bad_certificate alert
    drop(tcp);
    s.await_failures("alert_received", 1);
    assert_eq!(s.failures("server_name"), 0);
    room_still_works(&mut a, &mut b, "a foreign host name");
}

#[test]
fn a_client_certificate_we_did_not_ask_for_is_refused_with_unexpected_message() {
    let s = TlsServer::start(&[]);
    let mut a = s.wss("calm");
    let mut b = s.ws("calm");
    // A real TLS 1.2 client up to the server's ServerHelloDone; where it would send its
    // ClientKeyExchange, a Certificate message (RFC 5246 §7.4.6) goes instead: the server
    // sent no CertificateRequest.
    let config = s.cert.client_config(&[&rustls::version::TLS12]);
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config, name).unwrap();
    let mut tcp = TcpStream::connect(&s.tls_addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    conn.write_tls(&mut tcp).unwrap(); // the ClientHello
    while !conn.wants_write() {
        conn.read_tls(&mut tcp).expect("the server's first flight");
        conn.process_new_packets().expect("a valid first flight");
    }
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(vec!["client.example".into()])
        .unwrap()
        .self_signed(&client_key)
        .unwrap();
    let der = client_cert.der();
    let mut entry = (der.len() as u32).to_be_bytes()[1..].to_vec();
    entry.extend_from_slice(der);
    let mut body = (entry.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&entry);
    let alert = fatal_alert_for_on(&mut tcp, &handshake_record(0x0b, &body));
    assert_eq!(alert, UNEXPECTED_MESSAGE);
    s.await_failures("client_certificate", 1);
    assert_eq!(s.failures("peer_misbehaved"), 0);
    room_still_works(&mut a, &mut b, "an unsolicited client certificate");
}

/// [`fatal_alert_for`] on a connection already under way.
fn fatal_alert_for_on(tcp: &mut TcpStream, bytes: &[u8]) -> u8 {
    tcp.write_all(bytes).unwrap();
    let answer = expect_closed(tcp);
    assert_eq!(answer.len(), 7, "one alert record: {answer:?}");
    assert_eq!(
        (answer[0], answer[5]),
        (0x15, 2),
        "a fatal alert: {answer:?}"
    );
    answer[6]
}
