//! Clients we did not write against the Pusher dialect (docs/pusher.md): pusher-js in Node
//! with signatures made by the `pusher` server SDK, and laravel-echo on top of it
//! (conformance/pusher/pusher_js.mjs), pusher-js's browser build in Debian's Chromium
//! (browser.mjs), and the `pusher` PyPI SDK (pusher_py.py); installed by
//! .ci/install.d/45-pusher.sh (Chromium by 30-conformance.sh).

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

/// A server with app 1 / key1 / secret1, the app every script here uses.
fn server() -> Server {
    Server::start(&common::PUSHER_APP)
}

/// Runs conformance/pusher/`script` with node against `s`; its stdout once it passed (its
/// last line is `done`).
fn run_node(s: &Server, script: &str, done: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    let (host, port) = s.addr.rsplit_once(':').expect("host:port");
    let out = Command::new("node")
        .arg(dir.join(script))
        .args([host, port])
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(done),
        "{script} failed:\n{stdout}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        s.stderr()
    );
    stdout
}

#[test]
fn pusher_js_pusher_sdk_and_laravel_echo() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    assert!(
        dir.join("node_modules/pusher-js").is_dir(),
        "pusher-js is needed in conformance/pusher/node_modules: run .ci/install"
    );
    run_node(&server(), "pusher_js.mjs", "all pusher-js steps passed");
}

/// Runs conformance/pusher/pusher_py.py with `args` after HOST PORT; its stdout as JSON.
fn pusher_py(s: &Server, args: &[&str]) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    let (host, port) = s.addr.rsplit_once(':').expect("host:port");
    let out = Command::new("python3")
        .arg(dir.join("pusher_py.py"))
        .args([host, port])
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pusher_py.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn the_pusher_python_sdk_signs_subscriptions_and_drives_the_http_api() {
    use serde_json::{Value, json};
    use tungstenite::Message;
    let have = Command::new("python3")
        .args(["-c", "import pusher"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with the `pusher` package is needed: run .ci/install"
    );
    let s = Server::start(&common::PUSHER_APP);
    let recv = |ws: &mut tungstenite::WebSocket<std::net::TcpStream>| -> Value {
        loop {
            match ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let mut clients = Vec::new();
    for (channel, data) in [
        ("private-py", None),
        ("private-py", None),
        ("presence-py", Some(r#"{"user_id":"py-user"}"#)),
    ] {
        let stream = std::net::TcpStream::connect(&s.addr).expect("connect");
        stream
            .set_read_timeout(Some(common::READ_TIMEOUT))
            .expect("timeout");
        let url = format!("ws://{}/app/key1?protocol=7", s.addr);
        let mut ws = tungstenite::client(url.as_str(), stream).expect("ws").0;
        let hello = recv(&mut ws);
        let inner: Value =
            serde_json::from_str(hello["data"].as_str().expect("data")).expect("JSON");
        let id = inner["socket_id"].as_str().expect("socket_id").to_owned();
        let mut args = vec!["auth", &id, channel];
        args.extend(data);
        let auth = pusher_py(&s, &args);
        let mut sub = json!({"channel": channel, "auth": auth["auth"]});
        if let Some(d) = auth.get("channel_data") {
            sub["channel_data"] = d.clone();
        }
        let msg = json!({"event": "pusher:subscribe", "data": sub});
        ws.send(Message::text(msg.to_string())).expect("send");
        assert_eq!(
            recv(&mut ws)["event"],
            "pusher_internal:subscription_succeeded",
            "{channel} with the SDK's signature"
        );
        clients.push((ws, id));
    }
    let excluded = clients[0].1.clone();
    let answers = pusher_py(&s, &["api", &excluded]);
    // The excluded socket gets only the second event and the batch one; the other all three.
    let (a, b) = clients.split_at_mut(1);
    let first = recv(&mut a[0].0);
    assert_eq!(
        (first["event"].as_str(), first["data"].as_str()),
        (Some("py-event"), Some(r#"{"n": 2}"#))
    );
    assert_eq!(recv(&mut a[0].0)["event"], "py-batch");
    for want in [r#"{"n": 1}"#, r#"{"n": 2}"#] {
        assert_eq!(recv(&mut b[0].0)["data"], want);
    }
    assert_eq!(recv(&mut b[0].0)["event"], "py-batch");
    assert_eq!(
        answers["channels"]["channels"]["presence-py"]["user_count"], 1,
        "{answers}"
    );
    assert_eq!(answers["channel"]["occupied"], true, "{answers}");
    assert_eq!(answers["channel"]["subscription_count"], 2, "{answers}");
    assert_eq!(
        answers["users"]["users"],
        json!([{"id": "py-user"}]),
        "{answers}"
    );
    assert_eq!(answers["bad_secret"], "401");
}

#[test]
fn pusher_js_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "playwright-core (conformance/pusher) and Chromium are needed: run .ci/install"
    );
    run_node(&server(), "browser.mjs", "all browser steps passed");
}

/// The demo page (docs/pusher.md#demo-page) as two users in Chromium, signed by the
/// `--pusher-demo-auth` signer (conformance/pusher/demo.mjs).
#[test]
fn the_pusher_demo_page_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "playwright-core (conformance/pusher) and Chromium are needed: run .ci/install"
    );
    let mut args = common::PUSHER_APP.to_vec();
    args.push("--pusher-demo-auth");
    run_node(&Server::start(&args), "demo.mjs", "all demo steps passed");
}
