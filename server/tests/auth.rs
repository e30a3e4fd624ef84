//! Token auth at the handshake (docs/tokens.md#what-is-checked): HS256 tokens signed here, presented by real clients in
//! the query and in `Authorization: Bearer`; refusals, room claims, read-only members, the order
//! of the checks, and logs that never show a token.

mod common;

use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Raw, Server, text};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

const SECRET: &str = "test-secret-for-ringcast";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `claims` (a JSON object) with HS256 under `secret`, with header `header`.
fn sign_with(secret: &str, header: &str, claims: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let p = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{sig}")
}

/// A valid token for `SECRET` with `extra` claims (`"sub":"x",` style, may be empty).
fn token(extra: &str) -> String {
    sign_with(
        SECRET,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(r#"{{{extra}"exp":{}}}"#, now() + 300),
    )
}

fn auth_server(args: &[&str]) -> Server {
    let mut all = vec!["--auth-secret", SECRET];
    all.extend_from_slice(args);
    Server::start(&all)
}

/// A raw upgrade request for `room` with `target` and extra header lines.
fn request(target: &str, room: Option<&str>, headers: &str) -> Vec<u8> {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n{headers}"
    );
    if let Some(room) = room {
        req.push_str(&format!("Sec-WebSocket-Protocol: {room}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {resp:?}"))
}

/// The one-line body of a refusal.
fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A tungstenite client with the token in the query (`via_query`) or in the header.
fn client(server: &Server, room: &str, token: &str, via_query: bool) -> WebSocket<TcpStream> {
    let url = if via_query {
        format!("{}?token={token}", server.url())
    } else {
        server.url()
    };
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(room).unwrap(),
    );
    if !via_query {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    let stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    let (ws, resp) = tungstenite::client(req, stream).expect("101");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], room);
    ws
}

#[test]
fn a_valid_token_in_the_query_or_the_header_upgrades() {
    let server = auth_server(&[]);
    let t = token(r#""sub":"alice","#);
    let mut by_query = client(&server, "chat", &t, true);
    let mut by_header = client(&server, "chat", &t, false);
    by_query.send(Message::text("from query")).unwrap();
    assert_eq!(text(&mut by_header), "from query");
    by_header.send(Message::text("from header")).unwrap();
    assert_eq!(text(&mut by_query), "from header");
    // Percent-escaped in the query works too, and the header scheme is case-insensitive.
    let escaped = t.replace('.', "%2E");
    let resp = Raw::connect_with(&server, &request(&format!("/?token={escaped}"), None, "")).1;
    assert_eq!(status(&resp), 101, "{resp}");
    let resp = Raw::connect_with(
        &server,
        &request("/", None, &format!("Authorization: bearer {t}\r\n")),
    )
    .1;
    assert_eq!(status(&resp), 101, "{resp}");
}

#[test]
fn missing_bad_expired_early_and_unsigned_tokens_get_401() {
    let server = auth_server(&[]);
    let n = now();
    let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
    let cases = [
        ("no token", String::new(), "missing token"),
        (
            "bad signature",
            sign_with("another-secret", hs, &format!(r#"{{"exp":{}}}"#, n + 300)),
            "bad token signature",
        ),
        (
            "expired",
            sign_with(SECRET, hs, &format!(r#"{{"exp":{}}}"#, n - 60)),
            "token expired",
        ),
        (
            "nbf in the future",
            sign_with(
                SECRET,
                hs,
                &format!(r#"{{"exp":{},"nbf":{}}}"#, n + 300, n + 60),
            ),
            "token not yet valid",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, n + 300))
            ),
            "unsupported token algorithm",
        ),
        (
            "no exp",
            sign_with(SECRET, hs, r#"{"sub":"x"}"#),
            "token has no exp claim",
        ),
        ("garbage", "not-a-jwt".to_string(), "malformed token"),
    ];
    let mut refused = 0;
    for (what, t, reason) in &cases {
        let via = [
            request(&format!("/?token={t}"), Some("chat"), ""),
            request("/", Some("chat"), &format!("Authorization: Bearer {t}\r\n")),
        ];
        for req in via {
            let resp = server.http(&req);
            assert_eq!(status(&resp), 401, "{what}: {resp}");
            assert!(resp.contains("Connection: close\r\n"), "{what}: {resp}");
            assert!(resp.contains("WWW-Authenticate: Bearer\r\n"), "{what}");
            assert_eq!(body(&resp), format!("{reason}\n"), "{what}");
            refused += 1;
        }
    }
    // A token that is not a Bearer one is no token.
    let resp = server.http(&request("/", None, "Authorization: Basic dTpw\r\n"));
    assert_eq!(body(&resp), "missing token\n");
    refused += 1;
    assert_eq!(
        server.metric("ringcast_connections_rejected_total{reason=\"unauthorized\"}"),
        refused
    );
    // Plain routes need no token.
    let resp = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&resp), 200, "{resp}");
}

#[test]
fn rooms_outside_the_claims_get_403_and_prefixes_match() {
    let server = auth_server(&[]);
    let t = token(r#""rooms":["team-*","exact"],"read":["news"],"#);
    for ok in ["team-a", "team-", "exact", "news", "pubsub"] {
        let resp = Raw::connect_with(&server, &request(&format!("/?token={t}"), Some(ok), "")).1;
        assert_eq!(status(&resp), 101, "{ok}: {resp}");
    }
    for denied in ["team", "teamx", "exactly", "other"] {
        let resp = server.http(&request(&format!("/?token={t}"), Some(denied), ""));
        assert_eq!(status(&resp), 403, "{denied}: {resp}");
        assert_eq!(body(&resp), "room not allowed by the token\n");
    }
    // No subprotocol: the default room, checked like any other.
    let resp = server.http(&request(&format!("/?token={t}"), None, ""));
    assert_eq!(status(&resp), 403, "lobby is not listed: {resp}");
    assert_eq!(
        server.metric("ringcast_connections_rejected_total{reason=\"room_forbidden\"}"),
        5
    );
    // Without room claims every room is allowed.
    let free = token("");
    let resp = Raw::connect_with(&server, &request(&format!("/?token={free}"), None, "")).1;
    assert_eq!(status(&resp), 101, "{resp}");
}

#[test]
fn a_read_only_member_that_sends_is_closed_with_1008() {
    let server = auth_server(&[]);
    let writer = token(r#""rooms":["news"],"#);
    let reader = token(r#""read":["news"],"#);
    let mut a = client(&server, "news", &writer, true);
    let mut b = client(&server, "news", &writer, false);
    let (mut r, head) = Raw::connect_with(
        &server,
        &request(&format!("/?token={reader}"), Some("news"), ""),
    );
    assert_eq!(status(&head), 101, "{head}");
    // The reader receives.
    a.send(Message::text("headline")).unwrap();
    assert_eq!(text(&mut b), "headline");
    match r.read_frame() {
        Some((0x1, p)) => assert_eq!(p, b"headline"),
        other => panic!("reader got {other:?}"),
    }
    // It may ping, but a data message closes it, and nobody receives that message.
    r.send_frame(ringcast_protocol::frame::OpCode::Ping, true, b"p");
    assert_eq!(r.read_frame(), Some((0xA, b"p".to_vec())));
    r.send_frame(ringcast_protocol::frame::OpCode::Text, true, b"sneaky");
    assert_eq!(r.expect_close(), 1008);
    r.expect_eof();
    b.send(Message::text("marker")).unwrap();
    assert_eq!(
        text(&mut a),
        "marker",
        "the reader's message was not delivered"
    );
}

#[test]
fn origin_comes_before_the_token_and_the_token_before_limits() {
    let server = auth_server(&["--allowed-origins", "https://good.example"]);
    let bad_origin = "Origin: https://evil.example\r\n";
    let good_origin = "Origin: https://good.example\r\n";
    let resp = server.http(&request("/?token=bad.bad.bad", Some("chat"), bad_origin));
    assert_eq!(status(&resp), 403, "origin first: {resp}");
    assert_eq!(body(&resp), "origin not allowed\n");
    let resp = server.http(&request("/?token=bad.bad.bad", Some("chat"), good_origin));
    assert_eq!(status(&resp), 401, "then the token: {resp}");

    // One connection allowed: the second is over the limit, yet a bad token is still a 401 and
    // a room outside the claims still a 403; only a request that passes both gets the 503.
    let server = auth_server(&["--max-connections", "1"]);
    let t = token(r#""rooms":["chat"],"#);
    let (_held, head) =
        Raw::connect_with(&server, &request(&format!("/?token={t}"), Some("chat"), ""));
    assert_eq!(status(&head), 101, "{head}");
    let resp = server.http(&request("/?token=bad.bad.bad", Some("chat"), ""));
    assert_eq!(status(&resp), 401, "token before limits: {resp}");
    let resp = server.http(&request(&format!("/?token={t}"), Some("other"), ""));
    assert_eq!(status(&resp), 403, "room before limits: {resp}");
    let resp = server.http(&request(&format!("/?token={t}"), Some("chat"), ""));
    assert_eq!(status(&resp), 503, "limits last: {resp}");
    let resp = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status(&resp),
        503,
        "plain routes over the limit too: {resp}"
    );
}

#[test]
fn the_secret_file_the_environment_and_the_toml_work_like_the_flag() {
    let dir = std::env::temp_dir().join(format!("ringcast-auth-{}", common::rand_u32()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let server = Server::start(&["--auth-secret-file", path.to_str().unwrap()]);
    let resp = Raw::connect_with(
        &server,
        &request(&format!("/?token={}", token("")), None, ""),
    )
    .1;
    assert_eq!(
        status(&resp),
        101,
        "the trailing newline is not part of the secret: {resp}"
    );
    assert_eq!(status(&server.http(&request("/", None, ""))), 401);

    let server = Server::start_with_env(&[], &[("RINGCAST_AUTH_SECRET", SECRET)]);
    let resp = Raw::connect_with(
        &server,
        &request(&format!("/?token={}", token("")), None, ""),
    )
    .1;
    assert_eq!(status(&resp), 101, "{resp}");
    assert_eq!(status(&server.http(&request("/", None, ""))), 401);

    let toml = dir.join("ringcast.toml");
    std::fs::write(&toml, format!("auth-secret = \"{SECRET}\"\n")).unwrap();
    let server = Server::start(&["--config", toml.to_str().unwrap()]);
    let resp = Raw::connect_with(
        &server,
        &request(&format!("/?token={}", token("")), None, ""),
    )
    .1;
    assert_eq!(status(&resp), 101, "{resp}");
    assert_eq!(status(&server.http(&request("/", None, ""))), 401);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["--auth-secret-file", "/nonexistent/secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read auth secret file"));
}

#[test]
fn no_log_line_shows_a_token() {
    let mut server = Server::start_with_env(
        &["--auth-secret", SECRET, "--rooms", "chat,news"],
        &[("RINGCAST_LOG", "trace")],
    );
    let good = token(r#""sub":"carol","rooms":["chat"],"#);
    let expired = sign_with(
        SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{}}}"#, now() - 600),
    );
    let forged = sign_with(
        "wrong",
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{}}}"#, now() + 600),
    );
    let garbage = "zzzgarbagetokenzzz";
    for t in [&good, &expired, &forged, &garbage.to_string()] {
        for room in ["chat", "news"] {
            // Only the response head is read: a good token in "chat" upgrades and stays open.
            let _ = Raw::connect_with(&server, &request(&format!("/?token={t}"), Some(room), ""));
            let auth = format!("Authorization: Bearer {t}\r\n");
            let _ = Raw::connect_with(&server, &request("/", Some(room), &auth));
        }
    }
    // A valid session that sends a message, so the data path logs too.
    let mut c = client(&server, "chat", &good, true);
    c.send(Message::text("hello")).unwrap();
    c.close(None).unwrap();
    assert_eq!(server.terminate().code(), Some(0));
    let log = server.stderr();
    assert!(
        log.contains("upgrade refused by token auth"),
        "the refusals were logged at debug: {log}"
    );
    for t in [&good, &expired, &forged, &garbage.to_string()] {
        // Each part on its own too: a log that split the token would still leak it.
        for part in t.split('.').filter(|p| p.len() > 8) {
            assert!(!log.contains(part), "a token part appears in the log");
        }
    }
}

/// The next text message, parsed.
fn json(ws: &mut WebSocket<TcpStream>) -> serde_json::Value {
    serde_json::from_str(&text(ws)).expect("a JSON object")
}

fn send_json(ws: &mut WebSocket<TcpStream>, v: serde_json::Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

#[test]
fn pubsub_answers_forbidden_outside_the_claims_and_names_the_user() {
    use serde_json::json;
    let server = auth_server(&[]);
    let t = token(r#""sub":"dana","rooms":["ok-*"],"read":["ro-*"],"#);
    let mut a = client(&server, "pubsub", &t, false);
    // Outside both claims: no subscribe; read-only: subscribe but no publish.
    send_json(&mut a, json!({"op":"subscribe","topic":"nope","id":1}));
    let e = json(&mut a);
    assert_eq!(
        (e["op"].as_str(), e["code"].as_str(), &e["id"]),
        (Some("error"), Some("forbidden"), &json!(1))
    );
    send_json(
        &mut a,
        json!({"op":"subscribe","topic":"ro-news","id":2,"presence":true}),
    );
    assert_eq!(json(&mut a)["op"], "subscribed");
    let snap = json(&mut a);
    assert_eq!(snap["op"], "presence");
    assert_eq!(
        snap["clients"][0]["user"], "dana",
        "sub is the presence user: {snap}"
    );
    send_json(
        &mut a,
        json!({"op":"publish","topic":"ro-news","data":1,"id":3}),
    );
    let e = json(&mut a);
    assert_eq!(
        (e["code"].as_str(), &e["id"]),
        (Some("forbidden"), &json!(3))
    );
    send_json(
        &mut a,
        json!({"op":"publish","topic":"nope","data":1,"id":4}),
    );
    assert_eq!(json(&mut a)["code"], "forbidden");
    send_json(&mut a, json!({"op":"presence","topic":"nope","id":6}));
    assert_eq!(
        json(&mut a)["code"],
        "forbidden",
        "who is in a topic needs read access"
    );
    // Still usable; a room member joining ro-news shows up with its own token's user.
    send_json(
        &mut a,
        json!({"op":"publish","topic":"ok-1","data":1,"id":5}),
    );
    assert_eq!(json(&mut a)["op"], "published");
    let writer = token(r#""sub":"erin","rooms":["ro-news"],"#);
    let mut w = client(&server, "ro-news", &writer, true);
    let join = json(&mut a);
    assert_eq!(
        (join["op"].as_str(), join["user"].as_str()),
        (Some("join"), Some("erin"))
    );
    w.send(Message::text("extra")).unwrap();
    let m = json(&mut a);
    assert_eq!(
        (m["op"].as_str(), m["data"].as_str()),
        (Some("message"), Some("extra"))
    );
}
