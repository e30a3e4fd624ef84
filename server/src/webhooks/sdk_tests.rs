//! Pusher's official Python server SDK (`pusher` on PyPI, installed by
//! `.ci/install.d/45-pusher-python.sh`) receives our webhooks and validates them with its own
//! `validate_webhook`: key, HMAC signature and a `time_ms` within 5 minutes; over `http://`,
//! and over `https://` with Python's `ssl` (OpenSSL) as the TLS server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ringcast_pusher::socket_id::SocketId;
use ringcast_pusher::webhook::Event;
use serde_json::{Value, json};

use super::metrics::Fate;
use super::tests::{WAIT, app, start};
use super::{Backoff, WebhookConfig};

/// An `http.server` that validates each POST with the SDK as app 1 (`key1` / `secret1`),
/// prints `{"valid":…,"webhook":…,"peer":<client port>}` and answers 200, or 401 when the
/// SDK refuses it. With a certificate and key file as arguments: HTTPS, HTTP/1.1 (keep-alive).
const RECEIVER: &str = r#"
import json, ssl, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
import pusher

client = pusher.Pusher(app_id="1", key="key1", secret="secret1")

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook = client.validate_webhook(
            self.headers.get("X-Pusher-Key"), self.headers.get("X-Pusher-Signature"), body)
        print(json.dumps({"valid": hook is not None, "webhook": hook,
                          "peer": self.client_address[1]}), flush=True)
        self.send_response(200 if hook else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Hook)
if len(sys.argv) > 2:
    Hook.protocol_version = "HTTP/1.1"
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn config(batch: usize) -> WebhookConfig {
    WebhookConfig {
        batch_max_events: batch,
        batch_window: Duration::from_secs(600),
        debounce: Duration::ZERO,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(5),
            attempts: 1,
        },
        ..WebhookConfig::default()
    }
}

/// Starts [`RECEIVER`] with `args`: the process and its output lines (its port first).
fn python_receiver(args: &[&str]) -> (Kill, crossbeam_channel::Receiver<String>) {
    let have = Command::new("python3")
        .args(["-c", "import pusher"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with the `pusher` package is needed: run .ci/install"
    );
    let mut child = Kill(
        Command::new("python3")
            .args(["-c", RECEIVER])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, lines)
}

/// The receiver's next line: the SDK's verdict on one POST.
fn verdict(lines: &crossbeam_channel::Receiver<String>) -> Value {
    let line = lines.recv_timeout(WAIT).expect("the SDK's verdict");
    serde_json::from_str(&line).expect("JSON line")
}

#[test]
fn the_official_python_sdk_validates_our_webhooks_and_refuses_a_wrong_secret() {
    let (_child, lines) = python_receiver(&[]);
    let port = lines.recv_timeout(WAIT).expect("the receiver's port");
    let url = format!("http://127.0.0.1:{port}/pusher/webhooks");

    let (w, metrics) = start(vec![app("1", &[&url])], config(5));
    let (channel, user) = ("presence-room".to_string(), "u1".to_string());
    w.emit(
        "1",
        Event::ChannelOccupied {
            channel: channel.clone(),
        },
    );
    w.emit(
        "1",
        Event::MemberAdded {
            channel: channel.clone(),
            user_id: user.clone(),
        },
    );
    w.emit(
        "1",
        Event::ClientEvent {
            channel: channel.clone(),
            event: "client-typing".into(),
            data: "{\"text\":\"h\\u00e9\\\"\"}".into(),
            socket_id: SocketId {
                high: 123,
                low: 456,
            },
            user_id: Some(user.clone()),
        },
    );
    w.emit(
        "1",
        Event::MemberRemoved {
            channel: channel.clone(),
            user_id: user.clone(),
        },
    );
    w.emit(
        "1",
        Event::ChannelVacated {
            channel: channel.clone(),
        },
    );
    let got = verdict(&lines);
    assert_eq!(got["valid"], true, "{got}");
    assert_eq!(
        got["webhook"]["events"],
        json!([
            {"name": "channel_occupied", "channel": channel},
            {"name": "member_added", "channel": channel, "user_id": user},
            {"name": "client_event", "channel": channel, "event": "client-typing",
             "data": "{\"text\":\"h\\u00e9\\\"\"}", "socket_id": "123.456", "user_id": user},
            {"name": "member_removed", "channel": channel, "user_id": user},
            {"name": "channel_vacated", "channel": channel},
        ])
    );
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Sent), 5);
    drop(w);

    // The same app id and key signed with another secret: the SDK refuses it (401).
    let mut forged = app("1", &[&url]);
    forged.secret = "not-the-secret".into();
    let (w, metrics) = start(vec![forged], config(1));
    w.emit("1", Event::ChannelOccupied { channel });
    let got = verdict(&lines);
    assert_eq!(got["valid"], false, "{got}");
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Failed), 1);
    drop(w);
}

#[test]
fn the_sdk_behind_python_ssl_gets_our_https_webhooks_on_one_kept_connection() {
    let dir = std::env::temp_dir().join(format!("ringcast-sdk-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = (rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params"))
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf");
    let path = |name: &str| dir.join(name).display().to_string();
    std::fs::write(path("ca.pem"), ca.pem()).expect("write");
    std::fs::write(path("cert.pem"), leaf.pem()).expect("write");
    std::fs::write(path("key.pem"), leaf_key.serialize_pem()).expect("write");

    let (_child, lines) = python_receiver(&[&path("cert.pem"), &path("key.pem")]);
    let port = lines.recv_timeout(WAIT).expect("the receiver's port");
    let url = format!("https://localhost:{port}/pusher/webhooks");
    let config = WebhookConfig {
        ca_file: Some(dir.join("ca.pem")),
        ..config(1)
    };
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    let mut peers = Vec::new();
    for (n, channel) in ["a", "b"].into_iter().enumerate() {
        let channel = channel.to_string();
        w.emit(
            "1",
            Event::ChannelOccupied {
                channel: channel.clone(),
            },
        );
        let got = verdict(&lines);
        assert_eq!(got["valid"], true, "{got}");
        assert_eq!(
            got["webhook"]["events"],
            json!([{"name": "channel_occupied", "channel": channel}])
        );
        peers.push(got["peer"].clone());
        assert!(metrics.wait_settled(n as u64 + 1, WAIT));
    }
    assert_eq!(peers[0], peers[1], "both POSTs on one connection");
    assert_eq!(metrics.count(0, Fate::Sent), 2);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The receiver process, ended however the test ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
