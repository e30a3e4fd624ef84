//! What one webhook POST costs the process over each kind of connection, against receivers
//! in this process on loopback (docs/pusher-webhooks.md#cost). A measurement, not a check:
//! ignored by default, run with
//! `cargo test -p ringcast --profile ci --bin ringcast post_cost -- --ignored --nocapture`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::http::Target;
use super::keep::Kept;

/// POSTs per kind of connection.
const POSTS: usize = 1000;

/// Reads one request with its Content-Length body; false at EOF or on an error.
fn read_request<S: Read>(s: &mut S) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = (head.lines())
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        return true;
    }
}

/// Answers each request 200, keeping the connection when `keep`.
fn serve<S: Read + Write>(mut s: S, keep: bool) {
    let answer: &[u8] = if keep {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    while read_request(&mut s) {
        if s.write_all(answer).and_then(|()| s.flush()).is_err() || !keep {
            return;
        }
    }
}

/// A receiver (TLS with `tls`) on a free port, a thread per connection; its port.
fn receiver(tls: Option<Arc<ServerConfig>>, keep: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                None => serve(tcp, keep),
                Some(config) => {
                    let Ok(conn) = ServerConnection::new(config) else {
                        return;
                    };
                    serve(StreamOwned::new(conn, tcp), keep);
                }
            });
        }
    });
    port
}

/// CPU time of the whole process (client and receivers), in seconds.
fn process_cpu() -> f64 {
    // SAFETY: `rusage` is plain data; getrusage fills it.
    let mut usage = unsafe { std::mem::zeroed::<libc::rusage>() };
    // SAFETY: a valid pointer to a `rusage` for the call's duration.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn post_cost() {
    let dir = std::env::temp_dir().join(format!("ringcast-post-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = (rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params"))
        .signed_by(&key, &ca, &ca_key)
        .expect("leaf");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![leaf.der().clone(), CertificateDer::from(ca.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = (ServerConfig::builder_with_provider(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .expect("server config");
    let server = Arc::new(server);
    let client = super::tls::client_config(Some(&dir.join("ca.pem"))).expect("client");
    let mut fresh = (*client).clone();
    fresh.resumption = rustls::client::Resumption::disabled();
    let fresh = Arc::new(fresh);
    let _ = std::fs::remove_dir_all(&dir);
    // A batch of ~10 small events, and the headers the senders add.
    let body = vec![b'x'; 2000];
    let signature = "0".repeat(64);
    let headers = [("X-Pusher-Key", "key"), ("X-Pusher-Signature", &signature)];
    for (name, tls, keep, config) in [
        ("http://, Connection: close", false, false, &client),
        ("http://, kept alive", false, true, &client),
        (
            "https://, Connection: close, no resumption",
            true,
            false,
            &fresh,
        ),
        ("https://, Connection: close, resumed", true, false, &client),
        ("https://, kept alive", true, true, &client),
    ] {
        let port = receiver(tls.then(|| server.clone()), keep);
        let scheme = if tls { "https" } else { "http" };
        let target = Target::parse(&format!("{scheme}://localhost:{port}/hooks")).expect("url");
        let mut kept = Kept::default();
        let mut took = Vec::with_capacity(POSTS);
        let cpu = process_cpu();
        for _ in 0..POSTS {
            let start = Instant::now();
            let timeout = Duration::from_secs(5);
            target
                .post(&mut kept, (&body, &headers), timeout, Some(config))
                .expect("post");
            took.push(start.elapsed());
        }
        let cpu_us = (process_cpu() - cpu) * 1e6 / POSTS as f64;
        took.sort();
        eprintln!(
            "{name}: median {:?}, p90 {:?} per POST; {cpu_us:.0} us CPU per POST (client + receiver)",
            took[POSTS / 2],
            took[POSTS * 9 / 10]
        );
    }
}
