//! Token auth at the handshake (SPEC §10): which token a request carries, whether it verifies,
//! and whether its claims admit the chosen room. The checks themselves (HS256, `exp`/`nbf`,
//! `rooms`/`read`) live in `ringcast_pubsub::auth`; this module applies them to an upgrade and
//! turns a failure into a refusal.
//!
//! The token is borrowed from the request head and never stored, formatted or logged: refusals
//! name what was wrong, never the text.

use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_protocol::handshake::{Upgrade, render_response};
use ringcast_pubsub::auth::{
    Access, AuthError, Claims, Verifier, token_from_authorization, token_from_target,
};

/// Why the token or its claims refuse an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    /// `--auth-secret` is set and the request carries no token (no `?token=` and no
    /// `Authorization: Bearer`): 401.
    #[error("missing token")]
    Missing,
    /// The token does not verify (signature, algorithm, `exp`, `nbf`, structure): 401.
    #[error("{0}")]
    Bad(AuthError),
    /// The chosen room is outside the token's `rooms` and `read` claims: 403.
    #[error("room not allowed by the token")]
    Room,
}

impl AuthRefusal {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AuthRefusal::Missing | AuthRefusal::Bad(_) => 401,
            AuthRefusal::Room => 403,
        }
    }

    /// The label of `ringcast_connections_rejected_total{reason=...}`.
    pub fn label(&self) -> &'static str {
        match self {
            AuthRefusal::Missing | AuthRefusal::Bad(_) => "unauthorized",
            AuthRefusal::Room => "room_forbidden",
        }
    }

    /// Appends the complete response: status line, `Connection: close`, a one-line text body
    /// (a 401 also names the scheme, RFC 6750 §3).
    pub fn render(&self, out: &mut Vec<u8>) {
        let extra = match self {
            AuthRefusal::Missing | AuthRefusal::Bad(_) => "WWW-Authenticate: Bearer\r\n",
            AuthRefusal::Room => "",
        };
        let body = format!("{self}\n");
        render_response(
            out,
            self.status(),
            extra,
            "text/plain; charset=utf-8",
            body.as_bytes(),
        );
    }
}

/// Verifies the token of `up` when a verifier is configured: `Ok(None)` without auth, the
/// claims of a valid token, or a 401. The `?token=` query parameter wins over the header.
pub fn check_token(
    verifier: Option<&Verifier>,
    up: &Upgrade<'_>,
) -> Result<Option<Claims>, AuthRefusal> {
    let Some(verifier) = verifier else {
        return Ok(None);
    };
    let from_query = token_from_target(up.target);
    let token = match &from_query {
        Some(t) => t.as_ref(),
        None => up
            .authorization
            .and_then(token_from_authorization)
            .ok_or(AuthRefusal::Missing)?,
    };
    verifier
        .verify(token, now_unix())
        .map(Some)
        .map_err(AuthRefusal::Bad)
}

/// What the claims allow in room `room` (everything without auth or without room claims), or a
/// 403 when they do not list it.
pub fn check_room(claims: Option<&Claims>, room: &str) -> Result<Access, AuthRefusal> {
    match claims.map_or(Access::Full, |c| c.access(room)) {
        Access::Denied => Err(AuthRefusal::Room),
        access => Ok(access),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it, which only makes tokens expire).
fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use ringcast_protocol::handshake::{Request, parse_request};

    use super::*;

    fn with_upgrade<R>(extra: &str, target: &str, f: impl FnOnce(&Upgrade<'_>) -> R) -> R {
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes();
        match parse_request(&head, 8192) {
            Ok(Some((Request::Upgrade(up), _))) => f(&up),
            other => panic!("not an upgrade: {other:?}"),
        }
    }

    #[test]
    fn without_a_verifier_every_request_passes() {
        with_upgrade("", "/", |up| assert_eq!(check_token(None, up), Ok(None)));
    }

    #[test]
    fn a_missing_token_and_a_foreign_scheme_are_401() {
        let v = Verifier::new(b"k");
        with_upgrade("", "/", |up| {
            assert_eq!(check_token(Some(&v), up), Err(AuthRefusal::Missing))
        });
        with_upgrade("Authorization: Basic dTpw\r\n", "/?other=1", |up| {
            assert_eq!(check_token(Some(&v), up), Err(AuthRefusal::Missing))
        });
        with_upgrade("", "/?token=a.b.c", |up| {
            assert_eq!(
                check_token(Some(&v), up),
                Err(AuthRefusal::Bad(AuthError::Malformed))
            )
        });
    }

    #[test]
    fn refusals_render_one_line_without_the_token() {
        let mut out = Vec::new();
        AuthRefusal::Bad(AuthError::Signature).render(&mut out);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("WWW-Authenticate: Bearer\r\n"));
        assert!(text.ends_with("\r\n\r\nbad token signature\n"), "{text}");
        assert_eq!(AuthRefusal::Room.status(), 403);
        assert_eq!(AuthRefusal::Room.label(), "room_forbidden");
    }

    #[test]
    fn rooms_outside_the_claims_are_403() {
        let claims = Claims {
            sub: None,
            rooms: Some(vec!["team-*".into()]),
            read: Some(vec!["news".into()]),
        };
        assert_eq!(check_room(Some(&claims), "team-a"), Ok(Access::Full));
        assert_eq!(check_room(Some(&claims), "news"), Ok(Access::Read));
        assert_eq!(check_room(Some(&claims), "other"), Err(AuthRefusal::Room));
        assert_eq!(check_room(None, "other"), Ok(Access::Full));
    }
}
