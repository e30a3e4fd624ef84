//! Token auth at the handshake (docs/tokens.md): which token a request carries, whether it verifies,
//! and whether its claims admit the chosen room. The checks themselves (HS256, `exp`/`nbf`,
//! `rooms`/`read`) live in `ringcast_pubsub::auth`; this module applies them to an upgrade and
//! turns a failure into a [`Refusal`] (`Unauthorized`: 401, `RoomForbidden`: 403).
//!
//! The token is borrowed from the request head and never stored, formatted or logged: refusals
//! name what was wrong, never the text.

use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_protocol::handshake::Upgrade;
use ringcast_pubsub::auth::{
    Access, AuthError, Claims, Verifier, token_from_authorization, token_from_target,
};

use crate::refusal::Refusal;

/// The one-line reason of a 401 for `e` (fixed text: never any part of the token).
fn reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::Malformed => "malformed token",
        AuthError::Algorithm => "unsupported token algorithm",
        AuthError::Signature => "bad token signature",
        AuthError::MissingExp => "token has no exp claim",
        AuthError::Expired => "token expired",
        AuthError::NotYetValid => "token not yet valid",
    }
}

/// Verifies the token of `up` when a verifier is configured: `Ok(None)` without auth, the
/// claims of a valid token, or a 401. The `?token=` query parameter wins over the header.
pub fn check_token(
    verifier: Option<&Verifier>,
    up: &Upgrade<'_>,
) -> Result<Option<Claims>, Refusal> {
    let Some(verifier) = verifier else {
        return Ok(None);
    };
    let from_query = token_from_target(up.path);
    let token = match &from_query {
        Some(t) => t.as_ref(),
        None => up
            .authorization
            .and_then(token_from_authorization)
            .ok_or(Refusal::Unauthorized("missing token"))?,
    };
    verifier
        .verify(token, now_unix())
        .map(Some)
        .map_err(|e| Refusal::Unauthorized(reason(&e)))
}

/// What the claims allow in room `room` (everything without auth or without room claims), or a
/// 403 when they do not list it.
pub fn check_room(claims: Option<&Claims>, room: &str) -> Result<Access, Refusal> {
    match claims.map_or(Access::Full, |c| c.access(room)) {
        Access::Denied => Err(Refusal::RoomForbidden),
        access => Ok(access),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it, which only makes tokens expire).
pub fn now_unix() -> i64 {
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
            assert_eq!(
                check_token(Some(&v), up),
                Err(Refusal::Unauthorized("missing token"))
            )
        });
        with_upgrade("Authorization: Basic dTpw\r\n", "/?other=1", |up| {
            assert_eq!(
                check_token(Some(&v), up),
                Err(Refusal::Unauthorized("missing token"))
            )
        });
        with_upgrade("", "/?token=a.b.c", |up| {
            assert_eq!(
                check_token(Some(&v), up),
                Err(Refusal::Unauthorized("malformed token"))
            )
        });
    }

    #[test]
    fn refusals_render_one_line_without_the_token() {
        let mut out = Vec::new();
        Refusal::Unauthorized(reason(&AuthError::Signature)).render(&mut out);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("WWW-Authenticate: Bearer\r\n"));
        assert!(text.ends_with("\r\n\r\nbad token signature\n"), "{text}");
        assert_eq!(Refusal::RoomForbidden.status(), 403);
        assert_eq!(Refusal::RoomForbidden.label(), "room_forbidden");
        // Each reason is the error's own text.
        for e in [
            AuthError::Malformed,
            AuthError::Algorithm,
            AuthError::Signature,
            AuthError::MissingExp,
            AuthError::Expired,
            AuthError::NotYetValid,
        ] {
            assert_eq!(reason(&e), e.to_string());
        }
    }

    #[test]
    fn rooms_outside_the_claims_are_403() {
        let claims = Claims {
            sub: None,
            rooms: Some(vec!["team-*".into()]),
            read: Some(vec!["news".into()]),
            exp: None,
        };
        assert_eq!(check_room(Some(&claims), "team-a"), Ok(Access::Full));
        assert_eq!(check_room(Some(&claims), "news"), Ok(Access::Read));
        assert_eq!(
            check_room(Some(&claims), "other"),
            Err(Refusal::RoomForbidden)
        );
        assert_eq!(check_room(None, "other"), Ok(Access::Full));
    }
}
