//! One Pusher webhook POST as the test receivers read it (`pusher_webhooks.rs` over TCP,
//! `pusher_webhooks_tls.rs` over TLS): the head and its Content-Length body, the key and
//! signature checked as a Pusher SDK does (hex HMAC-SHA256 of the body under the test app's
//! secret), answered 200.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One POST as the receiver saw it: whether its key and signature held, and its events.
pub struct Post {
    pub signed: bool,
    pub events: Vec<Value>,
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn hex_hmac(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads one request to a path under `/hooks` from `stream` and answers 200, with
/// `Connection: close` unless `keep` (then the connection may carry the next POST); `None`
/// for anything else or a broken request.
pub fn read_post<S: Read + Write>(stream: &mut S, keep: bool) -> Option<Post> {
    let mut reader = BufReader::new(&mut *stream);
    let (mut len, mut key, mut sig) = (0usize, String::new(), String::new());
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    if !line.starts_with("POST /hooks") {
        return None;
    }
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => len = value.trim().parse().ok()?,
            "x-pusher-key" => key = value.trim().to_owned(),
            "x-pusher-signature" => sig = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let answer: &[u8] = if keep {
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    stream.write_all(answer).ok()?;
    stream.flush().ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    let signed = key == "key1" && sig == hex_hmac(b"secret1", &body);
    let events = v["events"].as_array().cloned().unwrap_or_default();
    Some(Post { signed, events })
}
