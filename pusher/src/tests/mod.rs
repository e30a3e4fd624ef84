//! Unit tests of the crate against Pusher's documented examples and the official Python
//! SDK's signatures (fixtures/sdk_signatures.json, made by fixtures/gen_sdk_signatures.py).

mod auth;
mod events;
mod http_api;
mod sdk;
mod upgrade;
mod webhook;

use crate::app::{App, Apps};

/// The credentials of Pusher's worked examples.
pub(crate) fn doc_app() -> App {
    App::new("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
}

pub(crate) fn apps() -> Apps {
    let mut off = App::new("9", "offkey", "offsecret");
    off.enabled = false;
    Apps::new(vec![
        doc_app(),
        App::new("4", "otherkey", "othersecret"),
        off,
    ])
    .expect("apps")
}

/// Parses `out` as one JSON value.
pub(crate) fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// The `data` of a written event, decoded once more when it is a string (double encoding).
pub(crate) fn inner(event: &serde_json::Value) -> serde_json::Value {
    let data = event["data"]
        .as_str()
        .expect("double-encoded data is a string");
    serde_json::from_str(data).expect("data holds JSON")
}
