//! The Pusher Channels dialect (docs/pusher.md) spoken by a plain WebSocket client: the
//! connection, public/private/presence subscriptions with their signatures, client events,
//! the documented errors and close codes. pusher-js itself runs in `pusher_js.rs`.

mod common;

use std::net::TcpStream;

use common::Server;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

use common::PUSHER_APP as APP;

fn connect(s: &Server, path: &str) -> Ws {
    connect_to(&s.addr, path)
}

fn connect_to(addr: &str, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{addr}{path}");
    tungstenite::client(url.as_str(), stream)
        .expect("handshake")
        .0
}

fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}

/// Connects to app `key1` and returns the client with its socket id.
fn pusher(s: &Server) -> (Ws, String) {
    pusher_at(&s.addr)
}

fn pusher_at(addr: &str) -> (Ws, String) {
    let mut ws = connect_to(addr, "/app/key1?protocol=7&client=js&version=8.4.0");
    let hello = recv(&mut ws);
    assert_eq!(hello["event"], "pusher:connection_established");
    let data: Value =
        serde_json::from_str(hello["data"].as_str().expect("string data")).expect("double-encoded");
    assert_eq!(data["activity_timeout"], 120);
    let id = data["socket_id"].as_str().expect("socket_id").to_owned();
    (ws, id)
}

fn sign(to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret1").expect("key");
    mac.update(to_sign.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("key1:{hex}")
}

fn subscribe(ws: &mut Ws, channel: &str, auth: Option<String>, channel_data: Option<&str>) {
    let mut data = json!({ "channel": channel });
    if let Some(a) = auth {
        data["auth"] = json!(a);
    }
    if let Some(d) = channel_data {
        data["channel_data"] = json!(d);
    }
    send(ws, &json!({"event": "pusher:subscribe", "data": data}));
}

fn expect_close(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return f.code.into(),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => {}
            Err(e) => panic!("no close: {e}"),
        }
    }
}

#[test]
fn public_channel_ping_and_client_event_rules() {
    let s = Server::start(&APP);
    let (mut a, _) = pusher(&s);
    send(&mut a, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut a)["event"], "pusher:pong");
    subscribe(&mut a, "news", None, None);
    let ok = recv(&mut a);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], "news");
    // Client events are refused on public channels, and the connection stays usable.
    send(
        &mut a,
        &json!({"event": "client-x", "channel": "news", "data": {}}),
    );
    assert_eq!(recv(&mut a)["event"], "pusher:error");
    // An unknown non-client event and bad JSON get pusher:error too.
    send(&mut a, &json!({"event": "hello", "data": {}}));
    assert_eq!(recv(&mut a)["event"], "pusher:error");
    a.send(Message::text("{not json")).expect("send");
    assert_eq!(recv(&mut a)["event"], "pusher:error");
    send(&mut a, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut a)["event"], "pusher:pong");
}

#[test]
fn private_channel_signature_and_client_events_not_echoed() {
    let s = Server::start(&APP);
    let (mut a, id_a) = pusher(&s);
    let (mut b, id_b) = pusher(&s);
    assert_ne!(id_a, id_b);
    // A signature made for another socket is refused.
    subscribe(
        &mut a,
        "private-room",
        Some(sign(&format!("{id_b}:private-room"))),
        None,
    );
    let refused = recv(&mut a);
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["data"]["status"], 401);
    subscribe(&mut a, "private-room", None, None);
    assert_eq!(recv(&mut a)["event"], "pusher:subscription_error");
    for (ws, id) in [(&mut a, &id_a), (&mut b, &id_b)] {
        subscribe(
            ws,
            "private-room",
            Some(sign(&format!("{id}:private-room"))),
            None,
        );
        assert_eq!(recv(ws)["event"], "pusher_internal:subscription_succeeded");
    }
    send(
        &mut a,
        &json!({"event": "client-typing", "channel": "private-room", "data": {"who": "a"}}),
    );
    let got = recv(&mut b);
    assert_eq!(got["event"], "client-typing");
    assert_eq!(got["channel"], "private-room");
    assert_eq!(got["data"], r#"{"who":"a"}"#);
    // Not echoed: a's next message is the pong, not its own event.
    send(&mut a, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut a)["event"], "pusher:pong");
    // Past the rate (10/s by default) events are refused with 4301, the connection stays.
    for i in 0..12 {
        send(
            &mut b,
            &json!({"event": "client-n", "channel": "private-room", "data": i.to_string()}),
        );
    }
    let mut delivered = 0;
    loop {
        let v = recv(&mut a);
        if v["event"] == "client-n" {
            delivered += 1;
        } else {
            assert_eq!(v["event"], "pusher:pong");
            break;
        }
        if delivered == 10 {
            send(&mut a, &json!({"event": "pusher:ping", "data": {}}));
        }
    }
    assert_eq!(delivered, 10);
    let mut limited = 0;
    while limited < 2 {
        let v = recv(&mut b);
        assert_eq!(v["event"], "pusher:error");
        assert_eq!(v["data"]["code"], 4301);
        limited += 1;
    }
    // Unsubscribed: b no longer gets a's events.
    send(
        &mut b,
        &json!({"event": "pusher:unsubscribe", "data": {"channel": "private-room"}}),
    );
    send(
        &mut a,
        &json!({"event": "client-typing", "channel": "private-room", "data": "x"}),
    );
    send(&mut b, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut b)["event"], "pusher:pong");
}

#[test]
fn presence_members_once_per_user() {
    let s = Server::start(&APP);
    let join = |ws: &mut Ws, id: &str, user: &str| {
        let data = format!(r#"{{"user_id":"{user}","user_info":{{"name":"{user}"}}}}"#);
        let auth = sign(&format!("{id}:presence-team:{data}"));
        subscribe(ws, "presence-team", Some(auth), Some(&data));
        let ok = recv(ws);
        assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
        let d: Value = serde_json::from_str(ok["data"].as_str().expect("string")).expect("json");
        d["presence"].clone()
    };
    let (mut a, id_a) = pusher(&s);
    let p = join(&mut a, &id_a, "ann");
    assert_eq!(p["count"], 1);
    assert_eq!(p["hash"]["ann"]["name"], "ann");
    let (mut b, id_b) = pusher(&s);
    let p = join(&mut b, &id_b, "bob");
    assert_eq!(p["count"], 2);
    let added = recv(&mut a);
    assert_eq!(added["event"], "pusher_internal:member_added");
    let d: Value = serde_json::from_str(added["data"].as_str().expect("string")).expect("json");
    assert_eq!(d["user_id"], "bob");
    // Bob's second tab: no member_added for anyone.
    let (mut b2, id_b2) = pusher(&s);
    let p = join(&mut b2, &id_b2, "bob");
    assert_eq!(p["count"], 2);
    // Its end: no member_removed (bob is still in through his first tab).
    drop(b2);
    send(&mut a, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut a)["event"], "pusher:pong");
    // A client event on a presence channel carries the sender's user_id.
    send(
        &mut b,
        &json!({"event": "client-hi", "channel": "presence-team", "data": "yo"}),
    );
    let hi = recv(&mut a);
    assert_eq!(
        (hi["event"].as_str(), hi["user_id"].as_str()),
        (Some("client-hi"), Some("bob"))
    );
    // Bob's last connection ends: member_removed once.
    b.close(None).expect("close");
    let removed = recv(&mut a);
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    let d: Value = serde_json::from_str(removed["data"].as_str().expect("string")).expect("json");
    assert_eq!(d["user_id"], "bob");
    // A tampered channel_data is refused.
    let (mut c, id_c) = pusher(&s);
    let data = r#"{"user_id":"eve"}"#;
    let auth = sign(&format!("{id_c}:presence-team:{data}"));
    subscribe(
        &mut c,
        "presence-team",
        Some(auth),
        Some(r#"{"user_id":"ann"}"#),
    );
    assert_eq!(recv(&mut c)["event"], "pusher:subscription_error");
}

#[test]
fn documented_close_codes_and_other_dialects_kept_out() {
    let s = Server::start(&[&APP[..], &["--pusher-path-prefix", "/ws"]].concat());
    let mut unknown = connect(&s, "/ws/app/nokey?protocol=7");
    assert_eq!(recv(&mut unknown)["data"]["code"], 4001);
    assert_eq!(expect_close(&mut unknown), 4001);
    let mut no_protocol = connect(&s, "/ws/app/key1");
    assert_eq!(expect_close(&mut no_protocol), 4008);
    let mut old = connect(&s, "/ws/app/key1?protocol=2");
    assert_eq!(expect_close(&mut old), 4007);
    // Without the prefix the path is room mode's, not Pusher's.
    let mut room = connect(&s, "/app/key1?protocol=7");
    room.send(Message::text("hi")).expect("send");
    // JSON pub/sub may not reach a Pusher channel's topic.
    let mut ps = s.join(Some("pubsub"));
    ps.send(Message::text(
        r##"{"op":"subscribe","topic":"#pusher/1/private-x","id":1}"##,
    ))
    .expect("send");
    let v = recv(&mut ps);
    assert_eq!(v["op"], "error", "{v}");
    let metrics = s.metric_lines("ringcast_pusher_connections");
    assert_eq!(
        metrics,
        [("ringcast_pusher_connections{app=\"1\"}".to_string(), 0)]
    );
}

#[test]
fn signin_then_the_server_to_user_channel() {
    let s = Server::start(&APP);
    let (mut a, id) = pusher(&s);
    subscribe(&mut a, "#server-to-user-u1", None, None);
    assert_eq!(recv(&mut a)["event"], "pusher:subscription_error");
    let user_data = r#"{"id":"u1"}"#;
    let auth = sign(&format!("{id}::user::{user_data}"));
    send(
        &mut a,
        &json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    );
    let ok = recv(&mut a);
    assert_eq!(ok["event"], "pusher:signin_success");
    subscribe(&mut a, "#server-to-user-u1", None, None);
    assert_eq!(
        recv(&mut a)["event"],
        "pusher_internal:subscription_succeeded"
    );
    let (mut b, _) = pusher(&s);
    send(
        &mut b,
        &json!({"event": "pusher:signin", "data": {"auth": sign("wrong"), "user_data": user_data}}),
    );
    assert_eq!(recv(&mut b)["data"]["code"], 4009);
    assert_eq!(expect_close(&mut b), 4009);
}

#[test]
fn apps_from_the_config_file_are_apart() {
    let dir = std::env::temp_dir().join(format!("ringcast-pusher-{}", common::rand_u32()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("ringcast.toml");
    std::fs::write(
        &path,
        "[[pusher_apps]]\nid = 2\nkey = \"key2\"\nsecret = \"secret2\"\n\
         [[pusher_apps]]\nid = \"three\"\nkey = \"key3\"\nsecret = \"s3\"\nenabled = false\n",
    )
    .expect("write");
    let path = path.to_str().expect("utf-8").to_owned();
    let s = Server::start(&[&APP[..], &["--config", &path]].concat());
    let (mut one, _) = pusher(&s);
    let mut two = connect(&s, "/app/key2?protocol=7");
    assert_eq!(recv(&mut two)["event"], "pusher:connection_established");
    subscribe(&mut one, "news", None, None);
    subscribe(&mut two, "news", None, None);
    assert_eq!(
        recv(&mut one)["event"],
        "pusher_internal:subscription_succeeded"
    );
    assert_eq!(
        recv(&mut two)["event"],
        "pusher_internal:subscription_succeeded"
    );
    let lines = s.metric_lines("ringcast_pusher_channels");
    assert!(
        lines.contains(&("ringcast_pusher_channels{app=\"1\"}".into(), 1))
            && lines.contains(&("ringcast_pusher_channels{app=\"2\"}".into(), 1)),
        "{lines:?}"
    );
    let mut three = connect(&s, "/app/key3?protocol=7");
    assert_eq!(expect_close(&mut three), 4003);
    // A duplicate key is refused at start.
    let bad = Server::try_start(
        &[&APP[..], &["--config", &path, "--pusher-app-key", "key2"]].concat(),
        &[],
        None,
    );
    assert!(bad.is_err_and(|e| e.contains("key2")));
}

#[test]
fn http_api_statuses_and_pipelined_calls_in_order() {
    use ringcast_pusher::app::App;
    use ringcast_pusher::http_api::sign_request;
    use std::io::{Read, Write};
    let s = Server::start(&[&APP[..], &["--pusher-path-prefix", "/p"]].concat());
    let app = App::new("1", "key1", "secret1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (mut sub, _) = {
        let mut ws = connect(&s, "/p/app/key1?protocol=7");
        let hello = recv(&mut ws);
        (ws, hello)
    };
    subscribe(&mut sub, "news", None, None);
    assert_eq!(
        recv(&mut sub)["event"],
        "pusher_internal:subscription_succeeded"
    );
    let post = |path: &str, body: &str, at: i64| {
        let q = sign_request(&app, "POST", path, &[], body.as_bytes(), at);
        format!(
            "POST /p{path}?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Signed for the path without the proxy prefix, as the SDK signs the path it was given:
    // the server checks the path it received.
    let bad = s.http(
        post(
            "/apps/1/events",
            r#"{"name":"e","channel":"news","data":"x"}"#,
            now,
        )
        .as_bytes(),
    );
    assert!(bad.starts_with("HTTP/1.1 401"), "{bad}");
    let signed = |path: &str, body: &str, at: i64| {
        let q = sign_request(&app, "POST", &format!("/p{path}"), &[], body.as_bytes(), at);
        format!(
            "POST /p{path}?{q} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // One call per connection (the answer, then the close) unless pipelined below.
    let closing = |r: String| r.replacen("Host: x\r\n", "Host: x\r\nConnection: close\r\n", 1);
    let old = s.http(
        closing(signed(
            "/apps/1/events",
            r#"{"name":"e","channel":"news","data":"x"}"#,
            now - 700,
        ))
        .as_bytes(),
    );
    assert!(
        old.starts_with("HTTP/1.1 401") && old.contains("Timestamp expired"),
        "{old}"
    );
    let unknown = s.http(closing(signed("/apps/9/events", "{}", now)).as_bytes());
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    let method = s.http(b"GET /p/apps/1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(method.starts_with("HTTP/1.1 405"), "{method}");
    let bad_body = s.http(closing(signed("/apps/1/events", r#"{"name":"e"}"#, now)).as_bytes());
    assert!(bad_body.starts_with("HTTP/1.1 400"), "{bad_body}");
    // Two calls pipelined on one keep-alive connection: both answered, in order, and both
    // events delivered in order.
    let mut c = std::net::TcpStream::connect(&s.addr).expect("connect");
    c.set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    let both = signed(
        "/apps/1/events",
        r#"{"name":"one","channel":"news","data":"1"}"#,
        now,
    ) + &signed(
        "/apps/1/events",
        r#"{"name":"two","channel":"news","data":"2"}"#,
        now,
    );
    c.write_all(both.as_bytes()).expect("write");
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("HTTP/1.1 200").count() < 2 {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(recv(&mut sub)["event"], "one");
    assert_eq!(recv(&mut sub)["event"], "two");
}

#[test]
fn the_http_api_is_served_on_api_listen_too() {
    use ringcast_pusher::app::App;
    use ringcast_pusher::http_api::sign_request;
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .args(["--api-key", "k"])
        .args(APP)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let after = |marker: &str| -> String {
        let rest = line
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        rest.split('/').next().expect("addr").to_owned()
    };
    let (main, api) = (after("ws://"), after("http://"));
    /// Stops the server whatever the test's outcome.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let (mut sub, _) = pusher_at(&main);
    subscribe(&mut sub, "news", None, None);
    assert_eq!(
        recv(&mut sub)["event"],
        "pusher_internal:subscription_succeeded"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let body = r#"{"name":"via-api-listen","channel":"news","data":"x"}"#;
    let app = App::new("1", "key1", "secret1");
    let q = sign_request(&app, "POST", "/apps/1/events", &[], body.as_bytes(), now);
    let mut c = std::net::TcpStream::connect(&api).expect("connect");
    c.set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    write!(
        c,
        "POST /apps/1/events?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(recv(&mut sub)["event"], "via-api-listen");
}

#[test]
fn app_limits_connections_presence_members_and_encrypted_channels() {
    let dir = std::env::temp_dir().join(format!("ringcast-pusher-{}", common::rand_u32()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("ringcast.toml");
    std::fs::write(
        &path,
        "[[pusher_apps]]\nid = 1\nkey = \"key1\"\nsecret = \"secret1\"\n\
         max_connections = 2\nmax_presence_members = 1\n",
    )
    .expect("write");
    let s = Server::start(&["--config", path.to_str().expect("utf-8")]);
    let (mut a, id_a) = pusher(&s);
    let (mut b, id_b) = pusher(&s);
    // Over the app's quota: 4004, after the documented pusher:error.
    let mut third = connect(&s, "/app/key1?protocol=7");
    assert_eq!(recv(&mut third)["data"]["code"], 4004);
    assert_eq!(expect_close(&mut third), 4004);
    // One presence user at most: a second user is refused, the first stays.
    let join = |ws: &mut Ws, id: &str, user: &str| {
        let data = format!(r#"{{"user_id":"{user}"}}"#);
        let auth = sign(&format!("{id}:presence-p:{data}"));
        subscribe(ws, "presence-p", Some(auth), Some(&data));
        recv(ws)
    };
    assert_eq!(
        join(&mut a, &id_a, "u1")["event"],
        "pusher_internal:subscription_succeeded"
    );
    let full = join(&mut b, &id_b, "u2");
    assert_eq!(full["event"], "pusher:subscription_error", "{full}");
    assert_eq!(full["data"]["type"], "LimitReached");
    // Encrypted channels: subscribed with a signature, but no client events on them.
    let channel = "private-encrypted-x";
    subscribe(
        &mut b,
        channel,
        Some(sign(&format!("{id_b}:{channel}"))),
        None,
    );
    assert_eq!(
        recv(&mut b)["event"],
        "pusher_internal:subscription_succeeded"
    );
    send(
        &mut b,
        &json!({"event": "client-x", "channel": channel, "data": "plain"}),
    );
    assert_eq!(recv(&mut b)["event"], "pusher:error");
    // A closed connection frees its place in the quota.
    drop(a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the quota was not freed"
        );
        let mut c = connect(&s, "/app/key1?protocol=7");
        if recv(&mut c)["event"] == "pusher:connection_established" {
            break;
        }
    }
}

#[test]
fn a_silent_client_gets_4201_and_a_drain_4200() {
    use common::{Raw, upgrade_request};
    let s = Server::start(
        &[
            &APP[..],
            &["--ping-interval", "0.1", "--idle-timeout", "0.3"],
        ]
        .concat(),
    );
    let request = String::from_utf8(upgrade_request(None, b""))
        .expect("ascii")
        .replacen("GET / ", "GET /app/key1?protocol=7 ", 1);
    // A raw client answers no ping: the server's pings go unanswered, then 4201.
    let (mut silent, head) = Raw::connect_with(&s, request.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(silent.expect_close(), 4201);
    // A drain (SIGTERM) closes Pusher connections with 4200: reconnect at once, elsewhere.
    let (mut ws, _) = pusher(&s);
    s.signal(libc::SIGTERM);
    assert_eq!(expect_close(&mut ws), 4200);
}

#[test]
fn the_app_from_the_environment() {
    let s = Server::start_with_env(
        &[],
        &[
            ("RINGCAST_PUSHER_APP_ID", "1"),
            ("RINGCAST_PUSHER_APP_KEY", "key1"),
            ("RINGCAST_PUSHER_APP_SECRET", "secret1"),
        ],
    );
    let (mut ws, id) = pusher(&s);
    subscribe(
        &mut ws,
        "private-e",
        Some(sign(&format!("{id}:private-e"))),
        None,
    );
    assert_eq!(
        recv(&mut ws)["event"],
        "pusher_internal:subscription_succeeded"
    );
    // An id without its key and secret is refused at start.
    let bad = Server::try_start(&["--pusher-app-id", "1"], &[], None);
    assert!(bad.is_err());
}
