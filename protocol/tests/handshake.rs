//! Handshake parsing, validation and rendering (docs/http.md, docs/room-mode.md#which-room).

use ringcast_protocol::handshake::{
    Rejection, Request, Upgrade, accept_key, parse_request, render_accept, render_error,
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
fn plain_gets_hand_their_target_to_the_server() {
    for target in ["/", "/healthz", "/metrics?x=1", "/other/path?q"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
        match parse_request(req.as_bytes(), 8192) {
            Ok(Some((Request::Get { path }, n))) => {
                assert_eq!(path, target);
                assert_eq!(n, req.len());
            }
            other => panic!("{target}: {other:?}"),
        }
    }
}

#[test]
fn upgrade_exposes_path_and_authorization() {
    let req = "GET /chat?room=a&token=t.k.n HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer  abc.def \r\n\r\n";
    let u = parse_upgrade(req);
    assert_eq!(u.path, "/chat?room=a&token=t.k.n");
    assert_eq!(u.path_only(), "/chat");
    assert_eq!(u.query_param("token"), Some("t.k.n"));
    assert_eq!(u.authorization, Some("Bearer  abc.def"));
    assert_eq!(u.bearer_token(), Some("abc.def"));
    let basic = upgrade("Authorization: Basic dXNlcg==\r\n");
    let u = parse_upgrade(&basic);
    assert_eq!(u.bearer_token(), None);
    assert_eq!(u.authorization, Some("Basic dXNlcg=="));
    let plain = upgrade("");
    let u = parse_upgrade(&plain);
    assert_eq!(
        (u.path, u.authorization, u.bearer_token()),
        ("/chat", None, None)
    );
}

#[test]
fn repeated_single_headers_are_refused() {
    // RFC 6455 §11.3.1 and §11.3.5: Sec-WebSocket-Key and -Version must not repeat; a second
    // Origin, Authorization or Host is as ambiguous.
    for (extra, reason) in [
        (
            "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
            "repeated Sec-WebSocket-Key header",
        ),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "repeated Sec-WebSocket-Key header",
        ),
        (
            "Sec-WebSocket-Version: 13\r\n",
            "repeated Sec-WebSocket-Version header",
        ),
        ("Host: other\r\n", "repeated Host header"),
        (
            "Origin: http://a\r\nOrigin: http://b\r\n",
            "repeated Origin header",
        ),
        (
            "Authorization: Bearer a\r\nauthorization: Bearer b\r\n",
            "repeated Authorization header",
        ),
    ] {
        let req = upgrade(extra);
        assert_eq!(parse(&req), Err(Rejection::BadRequest(reason)), "{extra:?}");
        assert_eq!(status_of(&req, 8192), 400);
    }
}

#[test]
fn list_headers_on_several_lines_are_merged() {
    // RFC 7230 §3.2.2: `Connection` and `Upgrade` are lists; several lines are one list.
    let split = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(parse_upgrade(split).accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let reversed = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    parse_upgrade(reversed);
    // Merging never invents a token: no line says `Upgrade`.
    let none = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(
        parse(none),
        Err(Rejection::BadRequest("missing Connection: Upgrade"))
    );
}

#[test]
fn any_status_renders_a_closing_error() {
    for (status, phrase) in [
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (503, "Service Unavailable"),
        (418, "Error"),
    ] {
        let mut out = Vec::new();
        render_error(
            &mut out,
            status,
            "Retry-After: 1\r\n",
            "too many\r\nX-Injected: 1",
        );
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} {phrase}\r\n")),
            "{head}"
        );
        assert!(head.contains("\r\nRetry-After: 1\r\n"));
        assert!(head.contains("\r\nConnection: close"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(
            body, "too many  X-Injected: 1\n",
            "the reason stays one line"
        );
    }
}

fn status_of(req: &str, max_head: usize) -> u16 {
    match parse_request(req.as_bytes(), max_head) {
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
    assert_eq!(status_of("POST / HTTP/1.1\r\nHost: h\r\n\r\n", 256), 405);
    // 426 for a path the server does not serve: the server decides, the protocol renders.
    let mut out = Vec::new();
    Rejection::UpgradeRequired.render(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("Upgrade: websocket\r\n"));
    let v = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    assert_eq!(status_of(v, 256), 426);
    let mut out = Vec::new();
    Rejection::UnsupportedVersion.render(&mut out);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("Sec-WebSocket-Version: 13\r\n")
    );
    let bad_key = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(bad_key, 256), 400);
    let no_key = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_key, 256), 400);
    let no_upgrade = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_upgrade, 256), 400);
    let no_conn = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(status_of(no_conn, 256), 400);
    assert_eq!(status_of("GET\0 / HTTP/1.1\r\n\r\n", 256), 400);
    assert_eq!(status_of("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 256), 400);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(300)
    );
    assert_eq!(status_of(&big, 256), 431);
    // An incomplete head is refused once it reaches the limit, not only when it completes.
    assert_eq!(status_of(&big[..260], 256), 431);
    assert_eq!(Rejection::NoAcceptableProtocol.status(), 400);
}

#[test]
fn query_token() {
    let req = "GET /room?a=1&token=abc HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://x\r\n\r\n";
    let u = parse_upgrade(req);
    assert_eq!(u.query_param("token"), Some("abc"));
    assert_eq!(u.origin, Some("http://x"));
}
