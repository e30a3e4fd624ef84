//! Pusher's "Authentication and authorization signatures": the channel auth string
//! `key:hex(HMAC-SHA256(secret, socket_id:channel[:channel_data]))` of `pusher:subscribe`,
//! and the user auth string `key:hex(HMAC-SHA256(secret, socket_id::user::user_data))` of
//! `pusher:signin`.
//!
//! Verification decodes the client's hex digest and lets `hmac` compare the tags in constant
//! time; the key part is public (it is in the page's JavaScript) and compared plainly.
//! Errors never carry the secret or the expected signature.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::app::App;
use crate::hex;

type HmacSha256 = Hmac<Sha256>;

/// Why an auth string is refused. The server answers each as unauthorized (4009).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// Not `key:signature` with a 64-digit hex signature.
    #[error("auth is not key:signature")]
    Malformed,
    /// The key part is not the app's key.
    #[error("auth key is not this app's key")]
    WrongKey,
    /// The signature does not match.
    #[error("invalid signature")]
    BadSignature,
}

/// A keyed HMAC-SHA256 over `parts` written one after the other.
fn mac(secret: &str, parts: &[&str]) -> HmacSha256 {
    // `new_from_slice` only fails for fixed-size-key MACs; HMAC accepts every length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for part in parts {
        mac.update(part.as_bytes());
    }
    mac
}

/// Lowercase hex HMAC-SHA256 of `bytes` keyed with `secret` (a webhook body).
#[must_use]
pub fn hmac_hex_bytes(secret: &str, bytes: &[u8]) -> String {
    let mut mac = mac(secret, &[]);
    mac.update(bytes);
    hex::encode(&mac.finalize().into_bytes())
}

/// Lowercase hex HMAC-SHA256 of `parts` concatenated, keyed with `secret`: the signature
/// primitive of every Pusher signature (channel, user, HTTP API, webhook).
#[must_use]
pub fn hmac_hex(secret: &str, parts: &[&str]) -> String {
    hex::encode(&mac(secret, parts).finalize().into_bytes())
}

/// Whether `signature` (hex, either case) is the HMAC-SHA256 of `parts` under `secret`,
/// compared in constant time.
#[must_use]
pub fn hmac_matches(secret: &str, parts: &[&str], signature: &str) -> bool {
    hex::decode_array::<32>(signature)
        .is_some_and(|tag| mac(secret, parts).verify_slice(&tag).is_ok())
}

/// The channel signature of `socket_id:channel[:channel_data]` (what an app server's auth
/// endpoint computes).
#[must_use]
pub fn sign_channel(
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    match channel_data {
        Some(data) => hmac_hex(secret, &[socket_id, ":", channel, ":", data]),
        None => hmac_hex(secret, &[socket_id, ":", channel]),
    }
}

/// The user signature of `socket_id::user::user_data`.
#[must_use]
pub fn sign_user(secret: &str, socket_id: &str, user_data: &str) -> String {
    hmac_hex(secret, &[socket_id, "::user::", user_data])
}

/// Checks a `pusher:subscribe`'s `auth` for `channel` on `socket_id` (the server's own text
/// of the connection's id). `channel_data` is the subscribe's raw `channel_data` string for
/// presence channels (signed byte for byte as sent), `None` otherwise.
///
/// # Errors
/// [`AuthError`] when `auth` is malformed, names another key, or its signature differs.
pub fn verify_channel(
    app: &App,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> Result<(), AuthError> {
    let signature = key_signature(app, auth)?;
    let ok = match channel_data {
        Some(data) => hmac_matches(
            &app.secret,
            &[socket_id, ":", channel, ":", data],
            signature,
        ),
        None => hmac_matches(&app.secret, &[socket_id, ":", channel], signature),
    };
    ok.then_some(()).ok_or(AuthError::BadSignature)
}

/// Checks a `pusher:signin`'s `auth` for `user_data` (its raw string) on `socket_id`.
///
/// # Errors
/// [`AuthError`] when `auth` is malformed, names another key, or its signature differs.
pub fn verify_user(
    app: &App,
    socket_id: &str,
    user_data: &str,
    auth: &str,
) -> Result<(), AuthError> {
    let signature = key_signature(app, auth)?;
    hmac_matches(&app.secret, &[socket_id, "::user::", user_data], signature)
        .then_some(())
        .ok_or(AuthError::BadSignature)
}

/// Splits `key:signature` and checks the key.
fn key_signature<'a>(app: &App, auth: &'a str) -> Result<&'a str, AuthError> {
    let (key, signature) = auth.split_once(':').ok_or(AuthError::Malformed)?;
    if signature.len() != 64 {
        return Err(AuthError::Malformed);
    }
    if key != app.key {
        return Err(AuthError::WrongKey);
    }
    Ok(signature)
}
