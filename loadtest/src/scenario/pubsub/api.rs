//! The `api` scenario's publishers: plain HTTP/1.1 keep-alive connections that publish with
//! `POST /api/publish` (ringcast's server API, docs/api.md), pipelined up to `--window`
//! requests ahead of the answers, which are their credit. Subscribers are the `pubsub` ones,
//! so loss, order and latency are counted exactly as there; the latency runs from the
//! request's send time (in `data`'s header) to the copy's arrival at a subscriber.

use crate::payload::{self, Header, TEXT_HEADER};

use super::wire::MIN_DATA;

/// `POST /api/publish` carrying `{"channel":T,"data":"<header><filler>"}`, `data` a JSON
/// string of exactly `size` bytes (quotes included), like the `pubsub` publish's.
#[derive(Debug, Clone)]
pub struct ApiTemplate {
    buf: Vec<u8>,
    header_at: usize,
}

impl ApiTemplate {
    /// The request for channel `topic_json` (already quoted), with `key` as `X-API-Key`.
    pub fn new(topic_json: &str, size: usize, key: &str) -> Self {
        let mut body = format!(r#"{{"channel":{topic_json},"data":""#).into_bytes();
        let at = body.len();
        body.extend(std::iter::repeat_n(b'.', size.max(MIN_DATA) - 2));
        body.extend_from_slice(b"\"}");
        let head = format!(
            "POST /api/publish HTTP/1.1\r\nHost: loadtest\r\nX-API-Key: {key}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let header_at = head.len() + at;
        let mut buf = head.into_bytes();
        buf.extend_from_slice(&body);
        Self { buf, header_at }
    }

    /// The request carrying header `h`.
    pub fn with(&mut self, h: Header) -> &[u8] {
        let end = self.header_at + TEXT_HEADER;
        payload::write(&mut self.buf[self.header_at..end], false, h);
        &self.buf
    }
}

/// The complete answers at the start of `bytes`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answers {
    /// Bytes they take.
    pub used: usize,
    /// `200` with `{"result":…}`.
    pub ok: u64,
    /// The first other answer (status line and body), if any, and how many there were.
    pub failed: u64,
    /// The first failed answer, for the report.
    pub first_failure: Option<String>,
}

/// Reads the complete HTTP answers (`Content-Length` bodies) at the start of `bytes`; an
/// answer without `Content-Length` is taken as having no body.
pub fn answers(bytes: &[u8]) -> Answers {
    let mut a = Answers::default();
    loop {
        let rest = &bytes[a.used..];
        let Some(head_end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            return a;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]);
        let length = (head.lines().skip(1))
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let total = head_end + 4 + length;
        if rest.len() < total {
            return a;
        }
        let body = &rest[head_end + 4..total];
        if head.starts_with("HTTP/1.1 200") && body.starts_with(b"{\"result\"") {
            a.ok += 1;
        } else {
            a.failed += 1;
            a.first_failure.get_or_insert_with(|| {
                let status = head.lines().next().unwrap_or("");
                format!("{status}: {}", String::from_utf8_lossy(body))
            });
        }
        a.used += total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_has_its_length_and_header_in_place() {
        let mut t = ApiTemplate::new("\"room0\"", 64, "k");
        let h = Header {
            publisher: 3,
            seq: 9,
            sent_ns: 77,
        };
        let req = String::from_utf8(t.with(h).to_vec()).unwrap();
        let (head, body) = req.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{req}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let data = v["data"].as_str().unwrap();
        assert_eq!(data.len() + 2, 64);
        assert_eq!(payload::read(data.as_bytes(), false), Some(h));
    }

    #[test]
    fn pipelined_answers_are_counted_and_a_partial_one_waits() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"result\":{}}";
        let ok = &ok[..ok.len() - 2]; // "{\"result\":{" is 11 bytes
        let bad = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
        let mut all = ok.to_vec();
        all.extend_from_slice(bad);
        all.extend_from_slice(&ok[..20]);
        let a = answers(&all);
        assert_eq!((a.used, a.ok, a.failed), (ok.len() + bad.len(), 1, 1));
        assert!(a.first_failure.unwrap().starts_with("HTTP/1.1 401"));
    }
}
