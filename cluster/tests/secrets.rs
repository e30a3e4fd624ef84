//! Secrets never logged (issue 21 row 8): a Redis URL with a password shows `***` in its place
//! in every log line and error of the bus. Its own test binary: it installs the global
//! tracing subscriber (the bus logs from its own thread).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Node, RedisServer};
use ringcast_cluster::{Bus, BusConfig};

const PASSWORD: &str = "s3cr3tpw";

/// Every log line of the process, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn redis_password_never_reaches_logs_or_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let mut redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let mut cfg = BusConfig::new([url.clone()]);
    cfg.node_id = "n".into();
    cfg.reconnect_max = Duration::from_millis(100);
    // Debug of the configuration (a server may log it) hides the password too.
    let debug = format!("{cfg:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    let n = Node::start(cfg);
    n.wait_up(true); // link up line
    redis.kill();
    n.wait_up(false); // link down line
    // The first failed reconnect logs "cannot reach Redis" with the URL: wait for that line.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !logs.text().contains("cannot reach Redis") {
        assert!(std::time::Instant::now() < deadline, "no retry line");
        std::thread::sleep(Duration::from_millis(10));
    }
    redis.restart();
    n.wait_up(true);
    n.bus.shutdown();

    // An error naming the URL (a bad port) hides it as well.
    let bad = format!("redis://:{PASSWORD}@127.0.0.1:notaport");
    let err = Bus::start(BusConfig::new([bad]), |_| {}).unwrap_err();
    let err = err.to_string();
    assert!(!err.contains(PASSWORD), "{err}");
    assert!(err.contains("redis://:***@127.0.0.1"), "{err}");

    let text = logs.text();
    for what in ["link up", "link down", "cannot reach Redis"] {
        assert!(text.contains(what), "no {what:?} line in:\n{text}");
    }
    assert!(!text.contains(PASSWORD), "password logged:\n{text}");
    assert!(
        text.contains(&format!("redis://:***@127.0.0.1:{}", redis.port)),
        "{text}"
    );
}
