//! The WebSocket upgrade of the Pusher dialect: `{prefix}/app/{key}?protocol=7&client=…&
//! version=…`, answered with the app and protocol, or with the documented close code.
//!
//! Pusher answers a bad path, key or protocol after the upgrade, with a close frame carrying
//! the code (and, for protocol < 6, a `pusher:error` first): clients read the close code to
//! decide whether to reconnect, and an HTTP error status would only tell them "failed".

use crate::app::{App, Apps};
use crate::error::ErrorCode;
use crate::query;

/// Lowest protocol version accepted. 5 added `pusher:ping`/`pong` (which this dialect relies
/// on), 6 close codes, 7 `activity_timeout`; 1–4 are retired by Pusher.
pub const MIN_PROTOCOL: u32 = 5;
/// Highest protocol version accepted (the current one).
pub const MAX_PROTOCOL: u32 = 7;

/// The accepted upgrade of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade<'a> {
    /// The app named by the key in the path.
    pub app: &'a App,
    /// The protocol version, [`MIN_PROTOCOL`]–[`MAX_PROTOCOL`].
    pub protocol: u32,
    /// The `client` parameter (for example `js`), if any.
    pub client: Option<String>,
    /// The `version` parameter (for example `8.4.0`), if any.
    pub version: Option<String>,
}

impl Upgrade<'_> {
    /// Whether this client wants a `pusher:error` before a close (protocol < 6 does: it
    /// predates close codes).
    #[must_use]
    pub fn wants_error_before_close(&self) -> bool {
        self.protocol < 6
    }
}

/// Where the Pusher dialect is mounted: `{prefix}/app/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpgradePath {
    /// The prefix a reverse proxy adds (`""`, or `/pusher`, …), without a trailing slash.
    prefix: String,
}

impl UpgradePath {
    /// The dialect under `prefix` (a trailing `/` is dropped; `""` or `/` is the root).
    #[must_use]
    pub fn new(prefix: &str) -> UpgradePath {
        UpgradePath {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether the request target (`path?query`) is for this dialect at all: its path is
    /// `{prefix}/app` or below. The server uses this to pick the dialect before [`Self::parse`].
    #[must_use]
    pub fn matches(&self, target: &str) -> bool {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        path.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("/app"))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Parses a request target (`path?query`) against `apps`.
    ///
    /// # Errors
    /// The code to close with: [`ErrorCode::PathNotFound`] (not `{prefix}/app/{key}`),
    /// [`ErrorCode::AppNotFound`], [`ErrorCode::AppDisabled`], [`ErrorCode::NoProtocol`],
    /// [`ErrorCode::UnsupportedProtocol`] (not an integer in range) or
    /// [`ErrorCode::InvalidVersion`].
    pub fn parse<'a>(&self, apps: &'a Apps, target: &str) -> Result<Upgrade<'a>, ErrorCode> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let key = path
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("/app/"))
            .map(|key| key.strip_suffix('/').unwrap_or(key))
            .filter(|key| !key.is_empty() && !key.contains('/'))
            .ok_or(ErrorCode::PathNotFound)?;
        let app = apps.by_key(key).ok_or(ErrorCode::AppNotFound)?;
        if !app.enabled {
            return Err(ErrorCode::AppDisabled);
        }
        // An undecodable query cannot name a protocol.
        let pairs = query::parse(query).ok_or(ErrorCode::NoProtocol)?;
        let protocol = query::get(&pairs, "protocol").ok_or(ErrorCode::NoProtocol)?;
        let protocol = protocol
            .parse::<u32>()
            .ok()
            .filter(|p| (MIN_PROTOCOL..=MAX_PROTOCOL).contains(p))
            .ok_or(ErrorCode::UnsupportedProtocol)?;
        let version = query::get(&pairs, "version");
        if let Some(v) = version
            && !is_version(v)
        {
            return Err(ErrorCode::InvalidVersion);
        }
        Ok(Upgrade {
            app,
            protocol,
            client: query::get(&pairs, "client").map(str::to_owned),
            version: version.map(str::to_owned),
        })
    }
}

/// A library version: starts with a digit, then digits, letters, `.`, `-`, `+` (semver with
/// pre-release and build parts), at most 64 bytes.
fn is_version(v: &str) -> bool {
    v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}
