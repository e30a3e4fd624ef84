//! wss:// and https:// (docs/running.md#tls) checked by a TLS client we did not write:
//! `openssl s_client` verifies the chain of a test CA made at test time, negotiates TLS 1.2
//! and TLS 1.3 with ALPN `http/1.1`, and gets `/healthz`; a client offering only `h2` is
//! refused with the `no_application_protocol` alert. Needs the `openssl` command (Debian's
//! `openssl` package, installed with every CI image).
#![allow(missing_docs)]

mod common;
mod tls_common;

use std::io::Write;
use std::process::{Command, Stdio};

use tls_common::*;

/// Runs `openssl s_client` against the server with `args`, sends `request`, and returns
/// everything it printed (stdout and stderr).
fn s_client(server: &TlsServer, args: &[&str], request: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.tls_addr,
            "-servername",
            "localhost",
        ])
        .args([
            "-CAfile",
            &server.cert.ca(),
            "-verify_return_error",
            "-ign_eof",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command (apt-get install openssl)");
    // The server answers and closes (Connection: close), which ends s_client.
    child.stdin.take().unwrap().write_all(request).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn openssl_s_client_gets_tls_1_2_and_1_3_with_alpn_and_a_verified_chain() {
    let server = TlsServer::start_with(Cert::with_ca(), &[]);
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(&server, &[flag, "-alpn", "http/1.1"], request);
        assert!(out.contains(&format!("Protocol  : {version}")), "{out}");
        assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    }
    assert_eq!(server.failures("alpn"), 0);
}

#[test]
fn openssl_s_client_offering_only_h2_is_refused_with_an_alert() {
    let server = TlsServer::start_with(Cert::with_ca(), &[]);
    let out = s_client(&server, &["-alpn", "h2"], b"");
    assert!(out.contains("no application protocol"), "{out}");
    assert!(!out.contains("HTTP/1.1"), "{out}");
    server.await_failures("alpn", 1);
}
