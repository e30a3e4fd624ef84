//! Fuzzing of the request-head parser and of every response it leads to.
//!
//! The whole input is the bytes a client sent. Checks: the head length never exceeds the input,
//! a shorter prefix of a complete head is incomplete (never a different verdict), rejections
//! render a closing HTTP/1.1 response, and an accepted upgrade renders a 101 whose header block
//! ends exactly once (no header injection through the subprotocol).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_protocol::handshake::{Rejection, Request, is_token, parse_request, render_accept};

const MAX_HEAD: usize = 8192;

fn check_rejection(r: &Rejection) {
    let mut out = Vec::new();
    r.render(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 "), "rejection {r:?} status line");
    let text = String::from_utf8(out).expect("rejection is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("rejection head ends");
    assert!(
        head.contains("\r\nConnection: close"),
        "rejection {r:?} keeps the connection"
    );
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(head.starts_with(&format!("HTTP/1.1 {} ", r.status())));
}

fuzz_target!(|data: &[u8]| {
    let result = parse_request(data, MAX_HEAD);
    match &result {
        Ok(None) => assert!(data.len() < MAX_HEAD, "incomplete past the head limit"),
        Ok(Some((req, n))) => {
            assert!(
                *n <= data.len(),
                "head of {n} bytes in {} bytes",
                data.len()
            );
            assert!(*n <= MAX_HEAD);
            // The head alone parses the same, and one byte less is merely incomplete.
            let again = parse_request(&data[..*n], MAX_HEAD);
            assert_eq!(
                again.as_ref().ok().and_then(|r| r.as_ref()),
                Some(&(req.clone(), *n))
            );
            assert_eq!(
                parse_request(&data[..*n - 1], MAX_HEAD),
                Ok(None),
                "prefix of a head"
            );
            if let Request::Upgrade(up) = req {
                assert_eq!(up.accept.len(), 28, "accept key {:?}", up.accept);
                for chosen in [
                    up.select_protocol(|_| true),
                    up.select_protocol(|t| t.len() % 2 == 0),
                ] {
                    match chosen {
                        Ok(p) => {
                            if let Some(p) = p {
                                assert!(is_token(p), "selected non-token {p:?}");
                            } else {
                                assert!(!up.offers_protocols());
                            }
                            let mut out = Vec::new();
                            render_accept(&mut out, &up.accept, p);
                            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
                            let end = out.windows(4).position(|w| w == b"\r\n\r\n");
                            assert_eq!(end, Some(out.len() - 4), "101 head ends early");
                        }
                        Err(r) => {
                            assert!(up.offers_protocols());
                            check_rejection(&r);
                        }
                    }
                }
                let _ = up.query_param("token");
            }
        }
        Err(r) => check_rejection(r),
    }
});
