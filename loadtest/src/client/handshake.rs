//! Client side of the opening handshake (RFC 6455 §4.1): a request with a random key, and a check
//! of the server's 101 response including `Sec-WebSocket-Accept`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the key (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest response head we accept before giving up on a server.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a server's handshake response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The status line is not `HTTP/1.1 101`; carries the status code (0 if unreadable).
    #[error("server answered HTTP {0} instead of 101")]
    Status(u16),
    /// `Sec-WebSocket-Accept` is missing or does not match our key.
    #[error("missing or wrong Sec-WebSocket-Accept")]
    Accept,
    /// The server selected a subprotocol we did not offer.
    #[error("server selected a subprotocol we did not offer")]
    Protocol,
    /// The response head is larger than [`MAX_RESPONSE_HEAD`] or not valid text.
    #[error("malformed or oversized response head")]
    Malformed,
}

/// Builds the upgrade request and remembers the accept value the server must return.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    accept: String,
    protocol: Option<String>,
}

impl ClientHandshake {
    /// Writes a request for `path` on `host` into `out`, offering `protocol` when given.
    /// `key_bytes` must be 16 random bytes (a fresh nonce per connection).
    pub fn start(
        out: &mut Vec<u8>,
        host: &str,
        path: &str,
        protocol: Option<&str>,
        key_bytes: [u8; 16],
    ) -> Self {
        let key = STANDARD.encode(key_bytes);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
        );
        out.extend_from_slice(key.as_bytes());
        if let Some(p) = protocol {
            out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        Self {
            accept: accept_for(&key),
            protocol: protocol.map(str::to_owned),
        }
    }

    /// Checks a response. `Ok(None)`: the head is not complete yet; `Ok(Some(n))`: the upgrade
    /// succeeded and the head was `n` bytes long (frames may follow in the same buffer).
    pub fn finish(&self, buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if buf.len() > MAX_RESPONSE_HEAD {
                Err(HandshakeError::Malformed)
            } else {
                Ok(None)
            };
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(|_| HandshakeError::Malformed)?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or(HandshakeError::Malformed)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if !status_line.starts_with("HTTP/1.1 ") || status != 101 {
            return Err(HandshakeError::Status(status));
        }
        let mut accept_ok = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(HandshakeError::Malformed);
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("sec-websocket-accept") {
                accept_ok = value == self.accept;
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                let offered = self
                    .protocol
                    .as_deref()
                    .is_some_and(|p| p.split(',').any(|t| t.trim() == value));
                if !offered {
                    return Err(HandshakeError::Protocol);
                }
            }
        }
        if !accept_ok {
            return Err(HandshakeError::Accept);
        }
        Ok(Some(end + 4))
    }
}

/// Adds a permessage-deflate offer to a request head that `ClientHandshake::start` wrote (its
/// final empty line is moved after the offer).
pub fn offer_deflate(out: &mut Vec<u8>) {
    if out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
        out.extend_from_slice(
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n",
        );
    }
}

/// `base64(sha1(key ++ GUID))`, the value a server must return for `key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID);
    STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_accept() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn full_exchange() {
        let mut out = Vec::new();
        let hs = ClientHandshake::start(&mut out, "h:1", "/", Some("room0"), [7; 16]);
        let req = String::from_utf8(out).expect("ascii");
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("key");
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: room0\r\n\r\n\x01\x00",
            accept_for(key)
        );
        assert_eq!(hs.finish(&resp.as_bytes()[..20]), Ok(None));
        assert_eq!(hs.finish(resp.as_bytes()), Ok(Some(resp.len() - 2)));
        let bad = resp.replace("room0\r", "other\r");
        assert_eq!(hs.finish(bad.as_bytes()), Err(HandshakeError::Protocol));
        assert_eq!(
            hs.finish(b"HTTP/1.1 400 Bad\r\n\r\n"),
            Err(HandshakeError::Status(400))
        );
    }
}
