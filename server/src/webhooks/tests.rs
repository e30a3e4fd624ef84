//! Webhooks against real HTTP receivers on free loopback ports (a `TcpListener` thread each),
//! which check the signature with the app's secret as a Pusher SDK does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use ringcast_pusher::app::{App, Apps};
use ringcast_pusher::socket_id::SocketId;
use ringcast_pusher::webhook::Event;
use sha2::Sha256;

use super::metrics::{Fate, WebhookMetrics};
use super::{Backoff, WebhookConfig, WebhookError, Webhooks};

/// Longest a test waits for something that should happen at once before it fails.
pub(super) const WAIT: Duration = Duration::from_secs(20);

/// What the receiver got: one request.
struct Got {
    path: String,
    key: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

/// How the receiver answers the n-th request (the last entry repeats); `None`: never.
fn receiver(answers: Vec<Option<u16>>) -> (String, crossbeam_channel::Receiver<Got>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks?x=1", listener.local_addr().expect("addr"));
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let Some(got) = read_request(&mut stream) else {
                continue;
            };
            if tx.send(got).is_err() {
                return;
            }
            let answer = answers.get(n).or(answers.last()).copied().flatten();
            match answer {
                Some(code) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
                None => held.push(stream),
            }
        }
    });
    (url, rx)
}

fn read_request(stream: &mut TcpStream) -> Option<Got> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = req.parse(&buf) else {
            continue;
        };
        let header = |name: &str| {
            (req.headers.iter())
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().ok()?;
        if buf.len() < head + len {
            continue;
        }
        assert_eq!(req.method, Some("POST"));
        return Some(Got {
            path: req.path?.to_string(),
            key: header("x-pusher-key"),
            signature: header("x-pusher-signature"),
            content_type: header("content-type"),
            body: buf[head..head + len].to_vec(),
        });
    }
}

/// The check a receiver does (Pusher SDKs' `validate_webhook`): hex HMAC-SHA256 of the body.
fn signature_ok(secret: &str, got: &Got) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(&got.body);
    let hex: String = (mac.finalize().into_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    hex == got.signature
}

pub(super) fn app(id: &str, urls: &[&str]) -> App {
    let mut a = App::new(id, format!("key{id}"), format!("secret{id}"));
    a.webhooks = urls.iter().map(ToString::to_string).collect();
    a
}

pub(super) fn start(apps: Vec<App>, config: WebhookConfig) -> (Webhooks, Arc<WebhookMetrics>) {
    let w = Webhooks::start(Arc::new(Apps::new(apps).expect("apps")), config).expect("start");
    let metrics = w.inner.as_ref().expect("enabled").metrics.clone();
    (w, metrics)
}

fn occupied(c: &str) -> Event {
    Event::ChannelOccupied { channel: c.into() }
}

fn names(got: &Got) -> (u64, Vec<String>) {
    let v: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON body");
    let events = v["events"].as_array().expect("events");
    let names = events
        .iter()
        .map(|e| format!("{}:{}", e["name"].as_str().unwrap_or("?"), e["channel"]))
        .collect();
    (v["time_ms"].as_u64().expect("time_ms"), names)
}

fn quick() -> WebhookConfig {
    WebhookConfig {
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
            attempts: 3,
        },
        ..WebhookConfig::default()
    }
}

#[test]
fn events_arrive_batched_and_signed_per_app() {
    let (url1, got1) = receiver(vec![Some(200)]);
    let (url2, got2) = receiver(vec![Some(204)]);
    let config = WebhookConfig {
        // The count cap closes the batch, so the test does not depend on timing.
        batch_max_events: 3,
        batch_window: Duration::from_secs(60),
        ..quick()
    };
    let apps = vec![app("1", &[&url1]), app("2", &[&url2]), app("3", &[])];
    let (w, metrics) = start(apps, config);
    w.emit("1", occupied("a"));
    w.emit("2", occupied("other-app"));
    w.emit("3", occupied("no-webhooks")); // no URL: ignored
    w.emit("nope", occupied("unknown-app")); // ignored
    w.emit(
        "1",
        Event::MemberAdded {
            channel: "presence-p".into(),
            user_id: "u1".into(),
        },
    );
    w.emit(
        "1",
        Event::ClientEvent {
            channel: "private-c".into(),
            event: "client-typing".into(),
            data: "{\"x\":1}".into(),
            socket_id: SocketId { high: 1, low: 2 },
            user_id: None,
        },
    );
    let got = got1.recv_timeout(WAIT).expect("app 1's batch");
    assert_eq!(got.path, "/hooks?x=1");
    assert_eq!(got.key, "key1");
    assert_eq!(got.content_type, "application/json");
    assert!(signature_ok("secret1", &got), "bad signature");
    assert!(!signature_ok("secret2", &got));
    let (time_ms, events) = names(&got);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    assert!(now_ms.as_millis().abs_diff(u128::from(time_ms)) < 60_000);
    assert_eq!(
        events,
        [
            "channel_occupied:\"a\"",
            "member_added:\"presence-p\"",
            "client_event:\"private-c\""
        ]
    );
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Sent), 3);
    // App 2's single event waits for its window; dropping the last handle flushes it.
    drop(w);
    let got = got2.recv_timeout(WAIT).expect("app 2's batch");
    assert!(signature_ok("secret2", &got));
    assert_eq!(names(&got).1, ["channel_occupied:\"other-app\""]);
    assert!(metrics.wait_settled(2, WAIT));
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(text.contains("ringcast_webhook_events_total{app=\"1\",result=\"sent\"} 3\n"));
    assert!(text.contains("ringcast_webhook_events_total{app=\"2\",result=\"sent\"} 1\n"));
    assert!(text.contains("ringcast_webhook_latency_seconds_count{app=\"1\"} 1\n"));
    assert!(text.contains("ringcast_webhook_queued_events 0\n"));
    assert!(
        text.contains("ringcast_webhook_queued_bytes{app=\"1\"} 0\n"),
        "{text}"
    );
    assert!(!text.contains("app=\"3\""));
}

#[test]
fn a_batch_closes_when_its_window_ends() {
    let (url, got) = receiver(vec![Some(200)]);
    let config = WebhookConfig {
        batch_window: Duration::from_millis(20),
        ..quick()
    };
    let (w, _metrics) = start(vec![app("1", &[&url])], config);
    w.emit("1", occupied("a"));
    // Nothing else is emitted and the handle stays alive: only the window can send it.
    let got = got.recv_timeout(WAIT).expect("batch after the window");
    assert_eq!(names(&got).1, ["channel_occupied:\"a\""]);
    drop(w);
}

#[test]
fn every_url_gets_the_same_body_and_a_stuck_one_delays_no_other() {
    let (stuck, stuck_got) = receiver(vec![None]);
    let (live, live_got) = receiver(vec![Some(200)]);
    let config = WebhookConfig {
        batch_max_events: 1,
        timeout: Duration::from_secs(600),
        ..quick()
    };
    let (w, metrics) = start(vec![app("1", &[&stuck, &live])], config);
    w.emit("1", occupied("a"));
    let first = stuck_got.recv_timeout(WAIT).expect("the stuck URL's POST");
    let same = live_got.recv_timeout(WAIT).expect("the live URL's POST");
    assert_eq!(first.body, same.body);
    assert_eq!(first.signature, same.signature);
    // The stuck URL still holds its first POST; the live one gets every later batch.
    for c in ["b", "c", "d"] {
        w.emit("1", occupied(c));
        let got = live_got.recv_timeout(WAIT).expect("a later batch");
        assert_eq!(names(&got).1, [format!("channel_occupied:\"{c}\"")]);
    }
    assert!(metrics.wait_settled(4, WAIT));
    assert_eq!(metrics.count(0, Fate::Sent), 4);
    // Four for the live URL settled; the stuck URL's four wait (one in flight, three queued).
    assert_eq!(metrics.queued(), 4);
    drop(w);
}

#[test]
fn a_receiver_answering_500_then_200_gets_the_batch_again() {
    let (url, got) = receiver(vec![Some(500), Some(200)]);
    let config = WebhookConfig {
        batch_max_events: 2,
        ..quick()
    };
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    w.emit("1", occupied("a"));
    w.emit("1", occupied("b"));
    let first = got.recv_timeout(WAIT).expect("first attempt");
    let second = got.recv_timeout(WAIT).expect("the retry");
    assert_eq!(first.body, second.body, "the retry carries the same batch");
    assert!(signature_ok("secret1", &second));
    assert!(metrics.wait_settled(1, WAIT));
    let mut text = String::new();
    metrics.render(&mut text);
    for line in [
        "ringcast_webhook_events_total{app=\"1\",result=\"sent\"} 2",
        "ringcast_webhook_events_total{app=\"1\",result=\"failed\"} 0",
        "ringcast_webhook_retries_total{app=\"1\"} 1",
        "ringcast_webhook_request_failures_total{app=\"1\",reason=\"status\"} 1",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "{line} missing in\n{text}"
        );
    }
    drop(w);
}

#[test]
fn a_receiver_that_times_out_gets_the_batch_again() {
    // The first POST gets no answer at all: the attempt's timeout ends it, the retry lands.
    let (url, got) = receiver(vec![None, Some(200)]);
    let config = WebhookConfig {
        batch_max_events: 1,
        timeout: Duration::from_millis(300),
        ..quick()
    };
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    w.emit("1", occupied("a"));
    let first = got.recv_timeout(WAIT).expect("first attempt");
    let second = got.recv_timeout(WAIT).expect("the retry");
    assert_eq!(first.body, second.body);
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Sent), 1);
    let mut text = String::new();
    metrics.render(&mut text);
    let line = "ringcast_webhook_request_failures_total{app=\"1\",reason=\"timeout\"} 1\n";
    assert!(text.contains(line), "{text}");
    drop(w);
}

#[test]
fn a_refused_connection_is_retried_then_counted_failed() {
    // A port that was free a moment ago and is closed now: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let config = WebhookConfig {
        batch_max_events: 1,
        ..quick()
    };
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    w.emit("1", occupied("a"));
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Failed), 1);
    assert_eq!(metrics.count(0, Fate::Sent), 0);
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(text.contains("ringcast_webhook_retries_total{app=\"1\"} 2\n"));
    assert!(
        text.contains("ringcast_webhook_request_failures_total{app=\"1\",reason=\"connect\"} 3\n")
    );
    assert!(text.contains("ringcast_webhook_queued_events 0\n"));
    assert!(
        text.contains("ringcast_webhook_queued_bytes{app=\"1\"} 0\n"),
        "{text}"
    );
    drop(w);
}

#[test]
fn a_dead_receiver_never_blocks_emit_and_drops_are_counted_within_bounds() {
    // The receiver reads the first POST and never answers: its URL's sender is stuck on it.
    let (url, got) = receiver(vec![None]);
    let config = WebhookConfig {
        batch_max_events: 10,
        batch_window: Duration::from_secs(60),
        timeout: Duration::from_secs(600),
        queue_events: 100,
        queue_batches: 2,
        ..quick()
    };
    let bound =
        (config.queue_events + config.batch_max_events * (1 + config.queue_batches + 1)) as u64;
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    for i in 0..10 {
        w.emit("1", occupied(&format!("first-{i}")));
    }
    got.recv_timeout(WAIT).expect("the POST that hangs");
    // If emit blocked on the stuck receiver, this loop would never end.
    let total = 200_000;
    for i in 0..total {
        w.emit("1", occupied(&format!("c{i}")));
        if i % 10_000 == 0 {
            assert!(metrics.queued() <= bound, "{} queued", metrics.queued());
        }
    }
    assert!(metrics.queued() <= bound, "{} queued", metrics.queued());
    let dropped = metrics.count(0, Fate::Dropped);
    assert!(dropped >= total - bound - 10, "only {dropped} dropped");
    assert_eq!(metrics.count(0, Fate::Sent), 0);
    let mut text = String::new();
    metrics.render(&mut text);
    let line = "ringcast_webhook_events_total{app=\"1\",result=\"dropped\"} ";
    let shown = (text.lines())
        .find_map(|l| l.strip_prefix(line))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(shown.is_some_and(|n| n >= dropped), "{shown:?} < {dropped}");
    drop(w);
}

#[test]
fn large_events_are_dropped_at_the_byte_budget() {
    // The receiver never answers: everything emitted stays queued until the budget is full.
    let (url, got) = receiver(vec![None]);
    let config = WebhookConfig {
        batch_max_events: 4,
        batch_window: Duration::from_secs(600),
        timeout: Duration::from_secs(600),
        max_queued_bytes: 1 << 20,
        ..quick()
    };
    let (url2, got2) = receiver(vec![Some(200)]);
    let (w, metrics) = start(vec![app("1", &[&url]), app("2", &[&url2])], config);
    let data = "x".repeat(10 * 1024);
    let client_event = || Event::ClientEvent {
        channel: "private-c".into(),
        event: "client-big".into(),
        data: data.clone(),
        socket_id: SocketId { high: 1, low: 2 },
        user_id: None,
    };
    for _ in 0..4 {
        w.emit("1", client_event());
    }
    got.recv_timeout(WAIT).expect("the POST that hangs");
    let total = 2_000;
    for _ in 0..total {
        w.emit("1", client_event());
        // The budget, plus at most one batch whose body and events both exist while it is
        // signed, plus JSON's few bytes around each event.
        assert!(
            metrics.held_bytes() <= (1 << 20) + 9 * 11 * 1024,
            "{}",
            metrics.held_bytes()
        );
    }
    // 1 MiB holds fewer than 100 events of 10 KiB: most of the 2,000 are dropped.
    assert!(metrics.count(0, Fate::Dropped) >= total - 100);
    // The budget is per app: another app's events still go out.
    for _ in 0..4 {
        w.emit("2", client_event());
    }
    let got = got2.recv_timeout(WAIT).expect("app 2's batch");
    assert!(signature_ok("secret2", &got));
    assert_eq!(metrics.count(1, Fate::Dropped), 0);
    drop(w);
}

#[test]
fn a_quick_reconnect_sends_nothing_and_a_real_vacate_is_sent() {
    let (url, got) = receiver(vec![Some(200)]);
    let config = WebhookConfig {
        debounce: Duration::from_secs(600),
        batch_window: Duration::from_secs(600),
        ..quick()
    };
    let (w, metrics) = start(vec![app("1", &[&url])], config);
    let vacated = |c: &str| Event::ChannelVacated { channel: c.into() };
    let member = |added: bool| {
        let (channel, user_id) = ("presence-p".to_string(), "u".to_string());
        if added {
            Event::MemberAdded { channel, user_id }
        } else {
            Event::MemberRemoved { channel, user_id }
        }
    };
    w.emit("1", vacated("a"));
    w.emit("1", member(false));
    w.emit("1", vacated("b"));
    w.emit("1", occupied("a"));
    w.emit("1", member(true));
    // Dropping the last handle releases what is held and flushes the open batch at once.
    drop(w);
    let got = got.recv_timeout(WAIT).expect("the flushed batch");
    assert_eq!(names(&got).1, ["channel_vacated:\"b\""]);
    assert!(metrics.wait_settled(1, WAIT));
    assert_eq!(metrics.count(0, Fate::Debounced), 4);
    assert_eq!(metrics.count(0, Fate::Sent), 1);
    assert_eq!((metrics.queued(), metrics.held_bytes()), (0, 0));
}

#[test]
fn start_refuses_other_schemes_and_a_bad_ca_and_is_disabled_without_urls() {
    let apps = Arc::new(Apps::new(vec![app("1", &["ftp://example.com/"])]).expect("apps"));
    let err = Webhooks::start(apps, WebhookConfig::default()).err();
    assert!(matches!(err, Some(WebhookError::Url { .. })), "{err:?}");
    let apps = Arc::new(Apps::new(vec![app("1", &["https://example.com/"])]).expect("apps"));
    let missing = WebhookConfig {
        ca_file: Some("/nonexistent/ringcast-ca.pem".into()),
        ..WebhookConfig::default()
    };
    let err = Webhooks::start(apps, missing).err();
    assert!(matches!(err, Some(WebhookError::Ca(_))), "{err:?}");
    let none = Arc::new(Apps::new(vec![app("1", &[])]).expect("apps"));
    let w = Webhooks::start(none, WebhookConfig::default()).expect("start");
    assert!(w.inner.is_none());
    w.emit("1", occupied("a"));
    let mut text = String::new();
    w.render_metrics(&mut text);
    assert!(text.is_empty());
    let zero = WebhookConfig {
        queue_events: 0,
        ..WebhookConfig::default()
    };
    let apps = Arc::new(Apps::new(vec![app("1", &["http://h/"])]).expect("apps"));
    assert!(matches!(
        Webhooks::start(apps, zero),
        Err(WebhookError::Zero("queue_events"))
    ));
}
