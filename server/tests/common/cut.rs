//! A TCP link the test can cut: a forwarder on a free loopback port to an upstream (a
//! redis-server), so one node loses Redis while the others keep it. Cut: every forwarded
//! connection is shut down and new ones are closed at once; mended: new ones are forwarded
//! again.
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The forwarder; it lives as long as the test.
pub struct Cuttable {
    /// `host:port` to connect to instead of the upstream.
    pub addr: String,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Cuttable {
    /// Forwards to `upstream` (`host:port`).
    pub fn to(upstream: &str) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up, is_open, list) = (upstream.to_owned(), open.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let mut l = list.lock().expect("conns");
                for s in [&client, &server] {
                    l.push(s.try_clone().expect("clone"));
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Cuttable { addr, open, conns }
    }

    /// Shuts every forwarded connection down; new ones are closed until [`Cuttable::mend`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.conns.lock().expect("conns").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections again.
    pub fn mend(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` into `to` on a thread of its own until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
