//! docs/tokens.md#expiry against the binary: a connection lives no longer than its token
//! (`exp` + 5 s leeway) unless a pub/sub client refreshed it; room-mode members are closed with
//! 1008 at that time.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::json::{recv, send, subscribe};
use common::{READ_TIMEOUT, Server};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

const SECRET: &str = "expiry-test-secret";
const LEEWAY: f64 = 5.0;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A token for `sub` whose `exp` is `exp` (unix seconds).
fn token(sub: &str, exp: i64) -> String {
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":{exp}}}"#));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{sig}")
}

fn connect(s: &Server, token: &str, room: &str) -> WebSocket<TcpStream> {
    let url = format!("ws://{}/?token={token}", s.addr);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(room).unwrap(),
    );
    let stream = TcpStream::connect(&s.addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tungstenite::client(req, stream).expect("handshake").0
}

/// Reads until the server's Close: its code, reason and when it came.
fn close_of(ws: &mut WebSocket<TcpStream>) -> (u16, String, f64) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                return (u16::from(f.code), f.reason.to_string(), now());
            }
            Ok(_) => {}
            Err(e) => panic!("no Close: {e}"),
        }
    }
}

#[test]
fn expired_connections_close_within_a_second_of_exp_plus_leeway_and_refreshed_ones_stay() {
    let s = Server::start(&["--auth-secret", SECRET]);
    let exp = now().ceil() as i64 + 1;
    let short = token("alice", exp);
    let mut room = connect(&s, &short, "lobby");
    let mut plain = connect(&s, &short, "pubsub");
    let mut refreshed = connect(&s, &short, "pubsub");
    subscribe(&mut refreshed, "t", "");
    // Refused refreshes leave the connection as it was.
    for (bad, why) in [
        (token("bob", exp + 600), "the token is for another sub"),
        (token("alice", exp - 3600), "token expired"),
        ("not.a.token".to_string(), ""),
    ] {
        send(
            &mut refreshed,
            &format!(r#"{{"op":"refresh","id":1,"token":"{bad}"}}"#),
        );
        let v = recv(&mut refreshed);
        assert_eq!(
            (v["op"].as_str(), v["code"].as_str()),
            (Some("error"), Some("unauthorized"))
        );
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
        assert!(!v.to_string().contains(&bad), "the token is never echoed");
    }
    send(&mut refreshed, r#"{"op":"refresh","id":2}"#);
    assert_eq!(recv(&mut refreshed)["code"], "bad_field");
    let later = exp + 600;
    send(
        &mut refreshed,
        &format!(
            r#"{{"op":"refresh","id":"r","token":"{}"}}"#,
            token("alice", later)
        ),
    );
    let v = recv(&mut refreshed);
    assert_eq!(
        (v["op"].as_str(), &v["id"], v["exp"].as_i64()),
        (Some("refreshed"), &serde_json::json!("r"), Some(later))
    );
    // The others are closed with 1008 within a second of exp + leeway.
    let deadline = exp as f64 + LEEWAY;
    for ws in [&mut room, &mut plain] {
        let (code, reason, at) = close_of(ws);
        assert_eq!((code, reason.as_str()), (1008, "token expired"));
        assert!(at >= deadline - 0.05, "closed {:.2}s early", deadline - at);
        assert!(at <= deadline + 1.0, "closed {:.2}s late", at - deadline);
    }
    // The refreshed one still works, past its first token's end.
    let start = Instant::now();
    while now() < deadline + 1.0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    send(
        &mut refreshed,
        r#"{"op":"publish","topic":"t","id":3,"data":"still here"}"#,
    );
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(recv(&mut refreshed)["op"].as_str().unwrap().to_string());
    }
    got.sort();
    assert_eq!(got, vec!["message", "published"]);
    assert!(s.metric("ringcast_token_expiries_total") >= 2);
}

#[test]
fn refresh_without_tokens_in_use_is_refused() {
    let s = Server::start(&[]);
    let mut ws = common::json::client(&s);
    send(&mut ws, r#"{"op":"refresh","id":1,"token":"x.y.z"}"#);
    let v = recv(&mut ws);
    assert_eq!(
        (v["code"].as_str(), &v["id"]),
        (Some("unauthorized"), &serde_json::json!(1))
    );
}
