//! `TlsConn` against a rustls client, bytes handed over by hand (the test plays the kernel):
//! records split across receives, frames of one send sharing a record, no buffer held idle.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::TlsConn;
use crate::conn::outq::OutQueue;

/// A server connection and a client trusting its fresh self-signed certificate.
fn pair() -> (TlsConn, ClientConnection) {
    let dir = std::env::temp_dir().join(format!(
        "ringcast-tlsconn-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("pair");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("cert");
    std::fs::write(&key, ck.key_pair.serialize_pem()).expect("key");
    let (config, _) = super::super::server_config(&cert, &key).expect("config");
    let _ = std::fs::remove_dir_all(&dir);
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ck.cert.pem().as_bytes()).expect("der"))
        .expect("root");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let client = ClientConnection::new(Arc::new(client), name).expect("client");
    (TlsConn::new(config), client)
}

/// What the client has to send.
fn client_bytes(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).expect("write_tls");
    }
    out
}

/// Feeds `bytes` to the server `step` bytes at a time; returns the plaintext it yields.
fn receive_in_pieces(server: &mut TlsConn, bytes: &[u8], step: usize) -> Vec<u8> {
    let mut plain = vec![0; 16 * 1024];
    let mut got = Vec::new();
    for piece in bytes.chunks(step) {
        let mut piece = piece.to_vec();
        server
            .receive(&mut piece, &mut plain, |p| got.extend_from_slice(p))
            .expect("receive");
    }
    got
}

/// Plays one send of the server: starts it, hands its bytes to the client, completes it.
/// Returns the records and the plaintext the client read from them.
fn deliver(
    server: &mut TlsConn,
    out: &mut OutQueue,
    client: &mut ClientConnection,
) -> (Vec<u8>, Vec<u8>) {
    let Some(_sqe) = server.start_send(out, -1, 0) else {
        return (Vec::new(), Vec::new());
    };
    let bytes = server.cipher.in_flight_bytes().to_vec();
    server.sent(bytes.len(), out, false);
    let (mut rest, mut plain) = (&bytes[..], Vec::new());
    while !rest.is_empty() {
        client.read_tls(&mut rest).expect("read_tls");
        client
            .process_new_packets()
            .expect("client accepts the records");
        match client.reader().read_to_end(&mut plain) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
    (bytes, plain)
}

/// Runs the handshake, the client's bytes trickled one at a time.
fn handshake(server: &mut TlsConn, client: &mut ClientConnection, out: &mut OutQueue) {
    while client.is_handshaking() || server.is_handshaking() {
        let hello = client_bytes(client);
        receive_in_pieces(server, &hello, 1);
        deliver(server, out, client);
    }
    // The session ticket, if the server sent it after the handshake.
    deliver(server, out, client);
}

/// Application data records (content type 23) in `bytes`.
fn app_records(bytes: &[u8]) -> usize {
    let (mut n, mut at) = (0, 0);
    while at + 5 <= bytes.len() {
        n += usize::from(bytes[at] == 23);
        at += 5 + usize::from(u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]));
    }
    n
}

#[test]
fn records_split_anywhere_decrypt_and_an_idle_connection_holds_no_buffer() {
    let (mut server, mut client) = pair();
    let mut out = OutQueue::new();
    handshake(&mut server, &mut client, &mut out);
    let message = b"hello over tls, one byte per receive".repeat(40);
    for step in [1, 7, usize::MAX] {
        client.writer().write_all(&message).expect("write");
        let bytes = client_bytes(&mut client);
        assert_eq!(receive_in_pieces(&mut server, &bytes, step), message);
        assert_eq!(
            server.partial.capacity(),
            0,
            "released once the record is whole"
        );
    }
    assert!(
        !server.cipher.holds_memory(),
        "no ciphertext held while idle"
    );
}

#[test]
fn the_frames_of_one_send_share_one_record() {
    let (mut server, mut client) = pair();
    let mut out = OutQueue::new();
    handshake(&mut server, &mut client, &mut out);
    for i in 0..5u8 {
        out.push_owned(vec![b'a' + i; 64]);
    }
    let (bytes, plain) = deliver(&mut server, &mut out, &mut client);
    assert_eq!(app_records(&bytes), 1, "five chunks, one record");
    assert_eq!(out.unsent(), 0);
    assert_eq!(plain.len(), 320);
    assert_eq!(&plain[..64], &[b'a'; 64]);
    assert_eq!(&plain[256..], &[b'e'; 64]);
    assert!(!server.cipher.holds_memory(), "released once sent");
    // Past one record's capacity: 16 KiB per record.
    out.push_owned(vec![1; 20_000]);
    out.push_owned(vec![2; 20_000]);
    let (bytes, plain) = deliver(&mut server, &mut out, &mut client);
    assert_eq!(app_records(&bytes), 3);
    assert_eq!(plain.len(), 40_000);
    assert!(plain[..20_000].iter().all(|&b| b == 1) && plain[20_000..].iter().all(|&b| b == 2));
}
