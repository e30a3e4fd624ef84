//! Handshake parsing, validation and rendering (SPEC §3, §4).

use ringcast_protocol::handshake::{
    Rejection, Request, Route, Upgrade, accept_key, parse_request, render_accept,
};

fn upgrade(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn parse(s: &str) -> Result<Option<(Request<'_>, usize)>, Rejection> {
    parse_request(s.as_bytes(), 8192)
}

fn parse_upgrade(s: &str) -> Upgrade<'_> {
    match parse(s) {
        Ok(Some((Request::Upgrade(u), n))) => {
            assert_eq!(n, s.len());
            u
        }
        other => panic!("expected an upgrade, got {other:?}"),
    }
}

#[test]
fn rfc_example_key() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        parse_upgrade(&upgrade("")).accept,
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn seed_key_with_subprotocols_chooses_chat() {
    let req = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";
    let u = parse_upgrade(req);
    assert_eq!(u.accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    let chosen = u.select_protocol(|_| true).unwrap();
    assert_eq!(chosen, Some("chat"));
    let mut out = Vec::new();
    render_accept(&mut out, &u.accept, chosen);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(text.contains("Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"));
    assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn subprotocol_selection_rules() {
    let req = upgrade("Sec-WebSocket-Protocol: a/b, , room-2\r\nSec-WebSocket-Protocol: x\r\n");
    let u = parse_upgrade(&req);
    assert_eq!(u.select_protocol(|_| true).unwrap(), Some("room-2"));
    assert_eq!(u.select_protocol(|t| t == "x").unwrap(), Some("x"));
    assert_eq!(
        u.select_protocol(|t| t == "nope"),
        Err(Rejection::NoAcceptableProtocol)
    );
    let plain = upgrade("");
    let none = parse_upgrade(&plain);
    assert_eq!(none.select_protocol(|_| false).unwrap(), None);
}

#[test]
fn partial_head_needs_more_and_pipelined_bytes_are_kept() {
    let full = upgrade("");
    for cut in 0..full.len() {
        assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
    }
    let mut piped = full.clone().into_bytes();
    piped.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    let (_, n) = parse_request(&piped, 8192).unwrap().unwrap();
    assert_eq!(n, full.len());
}

#[test]
fn routes() {
    let get = |p: &str| {
        let req = format!("GET {p} HTTP/1.1\r\nHost: h\r\n\r\n");
        match parse_request(req.as_bytes(), 8192) {
            Ok(Some((Request::Get(r), _))) => Ok(Some(r)),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        }
    };
    assert_eq!(get("/"), Ok(Some(Route::Index)));
    assert_eq!(get("/healthz"), Ok(Some(Route::Healthz)));
    assert_eq!(get("/metrics?x=1"), Ok(Some(Route::Metrics)));
    assert_eq!(get("/other"), Err(Rejection::UpgradeRequired));
}

fn status_of(req: &str) -> u16 {
    match parse_request(req.as_bytes(), 256) {
        Err(r) => {
            let mut out = Vec::new();
            r.render(&mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("HTTP/1.1 {} ", r.status())));
            assert!(text.contains("Connection: close\r\n"));
            assert!(text.ends_with(&format!("{r}\n")));
            r.status()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn every_rejection_has_its_status() {
    assert_eq!(status_of("POST / HTTP/1.1\r\nHost: h\r\n\r\n"), 405);
    assert_eq!(status_of("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n"), 426);
    let v = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    assert_eq!(status_of(v), 426);
    let mut out = Vec::new();
    Rejection::UnsupportedVersion.render(&mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("Sec-WebSocket-Version: 13\r\n")
    );
    let bad_key = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(bad_key), 400);
    let no_key = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_key), 400);
    let no_upgrade = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_upgrade), 400);
    let no_conn = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_conn), 400);
    assert_eq!(status_of("GET\0 / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status_of("GET / HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(300)
    );
    assert_eq!(status_of(&big), 431);
    // An incomplete head is refused once it reaches the limit, not only when it completes.
    assert_eq!(status_of(&big[..260]), 431);
    for (r, s) in [
        (Rejection::Forbidden, 403),
        (Rejection::Unauthorized("expired token"), 401),
        (Rejection::Unavailable, 503),
        (Rejection::NoAcceptableProtocol, 400),
    ] {
        assert_eq!(r.status(), s);
    }
}

#[test]
fn query_token() {
    let req = "GET /room?a=1&token=abc HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://x\r\n\r\n";
    let u = parse_upgrade(req);
    assert_eq!(u.query_param("token"), Some("abc"));
    assert_eq!(u.origin, Some("http://x"));
}
