//! Keep-alive of the webhook client against scripted receivers on free loopback ports: a
//! connection is reused while the receiver's answers allow it, dropped when they do not, and
//! replaced without a failure when the receiver closed it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::failure::PostError;
use super::http::Target;
use super::keep::Kept;
use super::tests::WAIT;

const KEEP: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// What a receiver does with each request on one connection, in order; past the script's
/// end it closes the connection.
#[derive(Clone, Copy)]
enum Reply {
    /// Answers with these bytes.
    Answer(&'static str),
    /// Reads the request and closes without answering (a receiver's idle timeout firing as
    /// the POST arrives).
    Hangup,
}

/// A receiver following `scripts[n]` on its n-th connection (the last one repeats); its URL
/// and a channel of (connection number, request number on it) per request read.
fn receiver(scripts: Vec<Vec<Reply>>) -> (String, crossbeam_channel::Receiver<(usize, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let script = scripts
                .get(n)
                .or(scripts.last())
                .cloned()
                .unwrap_or_default();
            for (i, reply) in script.into_iter().enumerate() {
                if !read_request(&mut stream) || tx.send((n, i)).is_err() {
                    break;
                }
                match reply {
                    Reply::Answer(bytes) => {
                        if stream.write_all(bytes.as_bytes()).is_err() {
                            break;
                        }
                    }
                    Reply::Hangup => break,
                }
            }
        }
    });
    (url, rx)
}

/// Reads one request with its Content-Length body; false at EOF.
fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).is_ok()
}

fn post(target: &Target, kept: &mut Kept) -> Result<u16, PostError> {
    let headers = [("X-Pusher-Key", "k")];
    target.post(kept, (b"{}", &headers), Duration::from_secs(5), None)
}

#[test]
fn a_receiver_that_keeps_the_connection_gets_every_post_on_it() {
    let (url, seen) = receiver(vec![vec![Reply::Answer(KEEP); 3]]);
    let target = Target::parse(&url).expect("url");
    let mut kept = Kept::default();
    for i in 0..3 {
        assert_eq!(post(&target, &mut kept).expect("post"), 200);
        assert_eq!(seen.recv_timeout(WAIT).expect("request"), (0, i));
    }
    assert!(kept.is_kept());
}

#[test]
fn answers_that_end_their_connection_are_not_reused() {
    for answer in [
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive, Close\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    ] {
        let (url, seen) = receiver(vec![vec![Reply::Answer(answer)]]);
        let target = Target::parse(&url).expect("url");
        let mut kept = Kept::default();
        for n in 0..2 {
            assert_eq!(post(&target, &mut kept).expect(answer), 200);
            assert_eq!(
                seen.recv_timeout(WAIT).expect("request"),
                (n, 0),
                "{answer}"
            );
            assert!(!kept.is_kept(), "{answer}");
        }
    }
}

#[test]
fn a_non_2xx_answer_fails_the_post_but_keeps_the_connection() {
    let script = vec![
        Reply::Answer("HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"),
        Reply::Answer(KEEP),
    ];
    let (url, seen) = receiver(vec![script]);
    let target = Target::parse(&url).expect("url");
    let mut kept = Kept::default();
    assert!(matches!(
        post(&target, &mut kept),
        Err(PostError::Status(503))
    ));
    assert_eq!(post(&target, &mut kept).expect("post"), 200);
    assert_eq!(seen.recv_timeout(WAIT).expect("request"), (0, 0));
    assert_eq!(seen.recv_timeout(WAIT).expect("request"), (0, 1));
}

#[test]
fn a_connection_the_receiver_closed_is_replaced_without_a_failure() {
    // Closed after its answer: seen when the connection is taken, or as the next POST is
    // written; a new connection either way.
    let (url, seen) = receiver(vec![vec![Reply::Answer(KEEP)]]);
    let target = Target::parse(&url).expect("url");
    let mut kept = Kept::default();
    assert_eq!(post(&target, &mut kept).expect("first"), 200);
    assert_eq!(seen.recv_timeout(WAIT).expect("request"), (0, 0));
    assert_eq!(post(&target, &mut kept).expect("second"), 200);
    assert_eq!(seen.recv_timeout(WAIT).expect("request"), (1, 0));
    // Closed as the next POST arrives: that POST goes again on a new connection.
    let (url, seen) = receiver(vec![
        vec![Reply::Answer(KEEP), Reply::Hangup],
        vec![Reply::Answer(KEEP)],
    ]);
    let target = Target::parse(&url).expect("url");
    let mut kept = Kept::default();
    assert_eq!(post(&target, &mut kept).expect("first"), 200);
    assert_eq!(post(&target, &mut kept).expect("second, sent twice"), 200);
    let got: Vec<_> = (0..3)
        .map(|_| seen.recv_timeout(WAIT).expect("req"))
        .collect();
    assert_eq!(got, [(0, 0), (0, 1), (1, 0)]);
}
