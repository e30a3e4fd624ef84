//! Token auth (docs/tokens.md#what-is-checked): HS256 JWT verification and the `rooms` / `read` claims.
//!
//! Verified with `hmac` + `sha2` (RustCrypto) + `base64` + `serde_json` rather than a JWT crate:
//! HS256 is one HMAC over `header.payload`, a fixed 32-byte tag and two small JSON objects, about
//! a hundred lines here. A JWT crate would bring its algorithm zoo (jsonwebtoken's pure-Rust
//! backend pulls in `rsa`, which has an open advisory though RSA is unused) and its own policy
//! knobs that we would have to pin down anyway (allowed algorithms, required claims, leeway);
//! `sha2`/`hmac` share `digest` with the `sha1` the handshake already uses.
//!
//! Nothing here ever formats the token: errors name what was wrong, never the text.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Clock skew tolerated on `exp` and `nbf`, in seconds (docs/tokens.md#what-is-checked).
pub const LEEWAY_SECS: i64 = 5;

/// Why a token was refused. Each maps to HTTP 401; none carries any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not three base64url parts, or a part that is not the JSON object it should be.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256 (`none` included) or a `crit` extension.
    #[error("unsupported token algorithm")]
    Algorithm,
    /// The HMAC-SHA256 tag does not match the secret.
    #[error("bad token signature")]
    Signature,
    /// The claims have no numeric `exp`.
    #[error("token has no exp claim")]
    MissingExp,
    /// `exp` is more than the leeway in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("token not yet valid")]
    NotYetValid,
}

/// Checks HS256 tokens against one secret. Cheap to share (`Arc`) across workers.
#[derive(Clone)]
pub struct Verifier {
    /// The keyed HMAC state, cloned per token so the key is hashed once.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of every log line too.
        f.write_str("Verifier { .. }")
    }
}

/// The token header: only what decides whether we accept the algorithm.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The raw claims as they come out of JSON; `exp` is checked after parsing so that a missing one
/// gets its own error.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    read: Option<Vec<String>>,
}

impl Verifier {
    /// A verifier for `secret` (the bytes of `--auth-secret`, or of `--auth-secret-file` after
    /// [`secret_from_file`]). HMAC takes keys of any length; refusing an empty one is the
    /// configuration's job.
    pub fn new(secret: &[u8]) -> Verifier {
        // `new_from_slice` only fails for fixed-size-key MACs; HMAC accepts every length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Verifier { mac }
    }

    /// Verifies `token` at `now_unix` (seconds): structure, `alg` HS256, signature (constant-time
    /// compare), then `exp` (required) and `nbf` with [`LEEWAY_SECS`].
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = decode_json(h64)?;
        if header.alg != "HS256" || header.crit.is_some() {
            return Err(AuthError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(h64.as_bytes());
        mac.update(b".");
        mac.update(p64.as_bytes());
        // `verify_slice` compares in constant time and refuses a tag of the wrong length.
        mac.verify_slice(&sig).map_err(|_| AuthError::Signature)?;

        let raw: RawClaims = decode_json(p64)?;
        let exp = raw.exp.ok_or(AuthError::MissingExp)?;
        let now = now_unix as f64;
        if now > exp + LEEWAY_SECS as f64 {
            return Err(AuthError::Expired);
        }
        if raw.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS as f64) {
            return Err(AuthError::NotYetValid);
        }
        Ok(Claims {
            sub: raw.sub,
            rooms: raw.rooms,
            read: raw.read,
            exp: Some(exp.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64),
        })
    }
}

/// Decodes one base64url part into a JSON object of type `T`.
fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

/// What a connection may do, from a verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: the presence `user` of this connection.
    pub sub: Option<String>,
    /// `rooms`: names or `prefix*` the connection may join, subscribe and publish to.
    pub rooms: Option<Vec<String>>,
    /// `read`: names or `prefix*` the connection may only receive from.
    pub read: Option<Vec<String>>,
    /// `exp` in whole unix seconds (`None` only for claims not made by [`Verifier::verify`]):
    /// a connection lives until `exp` + [`LEEWAY_SECS`] unless it refreshes (docs/tokens.md#expiry).
    pub exp: Option<i64>,
}

/// What a connection may do with one room or topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Outside the claims: 403 at the handshake, `forbidden` in pub/sub.
    Denied,
    /// Listed in `read` only: may join / subscribe and receive, never send (1008 / `forbidden`).
    Read,
    /// Listed in `rooms`, or no claim at all: join, subscribe and publish.
    Full,
}

impl Claims {
    /// The access to room or topic `name`. Without `rooms` and `read`, everything is `Full`.
    /// The `--pubsub-protocol` token is not a room: the server selects pub/sub mode before
    /// asking, so it is never passed here.
    pub fn access(&self, name: &str) -> Access {
        if self.rooms.is_none() && self.read.is_none() {
            return Access::Full;
        }
        if listed(self.rooms.as_deref(), name) {
            Access::Full
        } else if listed(self.read.as_deref(), name) {
            Access::Read
        } else {
            Access::Denied
        }
    }

    /// May the connection join room `room` (as a full or read-only member)?
    pub fn may_join(&self, room: &str) -> bool {
        self.access(room) != Access::Denied
    }

    /// May the connection publish to `topic` (or send data as a member of room `topic`)?
    pub fn may_publish(&self, topic: &str) -> bool {
        self.access(topic) == Access::Full
    }

    /// May the connection subscribe to `topic` and receive its messages?
    pub fn may_read(&self, topic: &str) -> bool {
        self.access(topic) != Access::Denied
    }
}

/// Whether `name` matches an entry of `list`: exact, or a prefix when the entry ends in `*`.
fn listed(list: Option<&[String]>, name: &str) -> bool {
    list.unwrap_or_default()
        .iter()
        .any(|entry| match entry.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => entry == name,
        })
}

/// The secret in an `--auth-secret-file`: its bytes without the trailing line break editors add.
pub fn secret_from_file(contents: &[u8]) -> &[u8] {
    let mut s = contents;
    while let [rest @ .., b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}

/// The `token` query parameter of a request target (`/path?a=1&token=…`), percent-decoded.
/// `None` when absent, empty, or not valid percent-encoded UTF-8 (all three are a 401).
pub fn token_from_target(target: &str) -> Option<Cow<'_, str>> {
    let (_, query) = target.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))?;
    if value.is_empty() {
        return None;
    }
    percent_decode(value)
}

/// Decodes `%XX` escapes (a JWT never needs them, but a client may escape anyway).
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The token of an `Authorization` header value `Bearer <token>` (scheme case-insensitive).
pub fn token_from_authorization(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
