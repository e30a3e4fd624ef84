//! What the operator sees of the Pusher dialect: its HTTP API calls counted in /metrics by
//! route and status (docs/metrics.md#pusher), and the server API's `channels` listing room
//! mode and pub/sub channels but never a Pusher app's internal `#pusher/…` topics.

mod common;

use std::net::TcpStream;

use common::Server;
use ringcast_pusher::app::App;
use ringcast_pusher::http_api::sign_request;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

const API_KEY: &str = "observability-api-key";

fn recv(ws: &mut Ws) -> Value {
    serde_json::from_str(&common::text(ws)).expect("JSON")
}

/// A Pusher client of app `key1` subscribed to the public `channel`.
fn pusher_subscriber(s: &Server, channel: &str) -> Ws {
    let stream = TcpStream::connect(&s.addr).expect("connect");
    stream
        .set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{}/app/key1?protocol=7", s.addr);
    let mut ws = tungstenite::client(url.as_str(), stream).expect("ws").0;
    assert_eq!(recv(&mut ws)["event"], "pusher:connection_established");
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string())).expect("send");
    assert_eq!(
        recv(&mut ws)["event"],
        "pusher_internal:subscription_succeeded"
    );
    ws
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[test]
fn the_server_apis_channels_never_lists_pusher_topics() {
    let mut args = common::PUSHER_APP.to_vec();
    args.extend(["--api-key", API_KEY]);
    let s = Server::start(&args);
    let _pusher = pusher_subscriber(&s, "chat");
    let _member = s.join(Some("lobby"));
    for body in [r#"{}"#, r#"{"pattern":"*"}"#] {
        // The room member's join and the Pusher subscription are both in by now (each was
        // answered); the listing must show the room only.
        let answer = s.http(
            format!(
                "POST /api/channels HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let json: Value =
            serde_json::from_str(answer.split_once("\r\n\r\n").expect("body").1).expect("JSON");
        let names: Vec<&String> = json["result"]["channels"]
            .as_object()
            .expect("channels")
            .keys()
            .collect();
        assert_eq!(names, ["lobby"], "{body}: {answer}");
    }
}

#[test]
fn pusher_http_api_calls_are_counted_by_route_and_status() {
    let s = Server::start(&common::PUSHER_APP);
    let app = App::new("1", "key1", "secret1");
    let body = r#"{"name":"e","channel":"news","data":"x"}"#;
    let call = |method: &str, path: &str, body: &str, secret_ok: bool| {
        let signer = if secret_ok {
            app.clone()
        } else {
            App::new("1", "key1", "wrong")
        };
        let q = sign_request(&signer, method, path, &[], body.as_bytes(), now());
        let answer = s.http(
            format!(
                "{method} {path}?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        answer.split(' ').nth(1).unwrap_or("").to_owned()
    };
    assert_eq!(call("POST", "/apps/1/events", body, true), "200");
    assert_eq!(call("POST", "/apps/1/events", body, true), "200");
    assert_eq!(call("POST", "/apps/1/events", body, false), "401");
    assert_eq!(call("GET", "/apps/1/channels", "", true), "200");
    assert_eq!(call("GET", "/apps/1/nothing", "", true), "404");
    let lines = s.metric_lines("ringcast_pusher_api_requests_total");
    let get = |route: &str, status: &str| {
        let name =
            format!("ringcast_pusher_api_requests_total{{route=\"{route}\",status=\"{status}\"}}");
        lines.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    };
    assert_eq!(get("events", "200"), Some(2), "{lines:?}");
    assert_eq!(get("events", "401"), Some(1), "{lines:?}");
    assert_eq!(get("channels", "200"), Some(1), "{lines:?}");
    assert_eq!(get("other", "404"), Some(1), "{lines:?}");
    assert_eq!(get("batch_events", "200"), Some(0), "{lines:?}");
}
