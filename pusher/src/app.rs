//! Apps: isolated namespaces, each with its `id` (HTTP API paths), public `key` (WebSocket
//! path, auth strings) and `secret` (every signature), optional limits and webhook URLs.

use std::collections::HashMap;

/// Per-app limits. The defaults are the documented limits of Pusher's hosted service where
/// it documents one (10 KB of event data, 100 channels per trigger, 10 events per batch,
/// 100 presence members, 1 KB of `user_info`, 200-character names as the official SDKs
/// check), and soketi's / Sockudo's defaults otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections at once (`None`: no app-level cap); past it a connection is closed
    /// with 4004.
    pub max_connections: Option<u32>,
    /// Whether clients may send `client-*` events at all.
    pub client_events: bool,
    /// Client events a connection may send per second before 4301.
    pub client_events_per_second: u32,
    /// Longest channel name in bytes.
    pub max_channel_name_len: usize,
    /// Longest event name in bytes.
    pub max_event_name_len: usize,
    /// Largest event `data` in bytes (HTTP API and client events); HTTP answers 413 past it.
    pub max_event_data_bytes: usize,
    /// Most channels one `POST /events` may name.
    pub max_channels_per_trigger: usize,
    /// Most events in one `POST /batch_events`.
    pub max_batch_events: usize,
    /// Most distinct users in one presence channel.
    pub max_presence_members: usize,
    /// Longest presence `user_id` in bytes.
    pub max_user_id_len: usize,
    /// Largest presence `user_info` (its JSON text) in bytes.
    pub max_user_info_bytes: usize,
    /// `activity_timeout` sent in `pusher:connection_established`, in seconds.
    pub activity_timeout_secs: u32,
    /// Pusher's "subscription counting" app setting: the subscribers of a channel (not a
    /// presence channel) get `pusher_internal:subscription_count` when its count changes,
    /// and the app's webhooks a `subscription_count` event. Off by default.
    pub subscription_count: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: None,
            client_events: true,
            client_events_per_second: 10,
            max_channel_name_len: 200,
            max_event_name_len: 200,
            max_event_data_bytes: 10 * 1024,
            max_channels_per_trigger: 100,
            max_batch_events: 10,
            max_presence_members: 100,
            max_user_id_len: 128,
            max_user_info_bytes: 1024,
            activity_timeout_secs: 120,
            subscription_count: false,
        }
    }
}

/// One app.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The app id of HTTP API paths (`/apps/{id}/…`).
    pub id: String,
    /// The public key of the WebSocket path and of auth strings.
    pub key: String,
    /// The secret every signature is keyed with.
    pub secret: String,
    /// A disabled app refuses connections (4003) and API calls (403).
    pub enabled: bool,
    /// Its limits.
    pub limits: Limits,
    /// Where its webhooks go (none: no webhooks).
    pub webhooks: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of every log line.
        f.debug_struct("App")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("enabled", &self.enabled)
            .field("limits", &self.limits)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An enabled app with the default limits and no webhooks.
    #[must_use]
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> App {
        App {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            enabled: true,
            limits: Limits::default(),
            webhooks: Vec::new(),
        }
    }
}

/// Why a set of apps is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppsError {
    /// An id, key or secret is empty.
    #[error("app {0:?}: id, key and secret must not be empty")]
    Empty(String),
    /// An id or key contains a character outside `[A-Za-z0-9_.-]` (they appear unescaped in
    /// paths and in the `key:signature` auth strings).
    #[error("app {0:?}: id and key may only hold A-Z a-z 0-9 _ . -")]
    BadChar(String),
    /// Two apps share an id.
    #[error("two apps have the id {0:?}")]
    DuplicateId(String),
    /// Two apps share a key.
    #[error("two apps have the key {0:?}")]
    DuplicateKey(String),
}

/// The configured apps, found by key (WebSocket) or id (HTTP API).
#[derive(Debug, Clone, Default)]
pub struct Apps {
    apps: Vec<App>,
    by_key: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl Apps {
    /// Checks and indexes `apps`.
    ///
    /// # Errors
    /// An [`AppsError`] for an empty or oddly-charactered id or key, an empty secret, or an id
    /// or key used twice.
    pub fn new(apps: Vec<App>) -> Result<Apps, AppsError> {
        let mut by_key = HashMap::with_capacity(apps.len());
        let mut by_id = HashMap::with_capacity(apps.len());
        for (i, app) in apps.iter().enumerate() {
            if app.id.is_empty() || app.key.is_empty() || app.secret.is_empty() {
                return Err(AppsError::Empty(app.id.clone()));
            }
            let plain = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            };
            if !plain(&app.id) || !plain(&app.key) {
                return Err(AppsError::BadChar(app.id.clone()));
            }
            if by_id.insert(app.id.clone(), i).is_some() {
                return Err(AppsError::DuplicateId(app.id.clone()));
            }
            if by_key.insert(app.key.clone(), i).is_some() {
                return Err(AppsError::DuplicateKey(app.key.clone()));
            }
        }
        Ok(Apps {
            apps,
            by_key,
            by_id,
        })
    }

    /// The app with this public key.
    #[must_use]
    pub fn by_key(&self, key: &str) -> Option<&App> {
        self.by_key.get(key).map(|&i| &self.apps[i])
    }

    /// The app with this id.
    #[must_use]
    pub fn by_id(&self, id: &str) -> Option<&App> {
        self.by_id.get(id).map(|&i| &self.apps[i])
    }

    /// Every app, in configuration order.
    #[must_use]
    pub fn all(&self) -> &[App] {
        &self.apps
    }
}

/// Reserved prefix of the fan-out topics of Pusher channels (see [`topic`]). The other
/// dialects must refuse topics that start with it, or a JSON-mode client could subscribe to
/// an app's private channel by its topic name.
pub const TOPIC_PREFIX: &str = "#pusher/";

/// The fan-out topic of `channel` in app `app_id`: `#pusher/{app_id}/{channel}`. Apps are
/// isolated namespaces because the app id is part of every topic; the bus and history see an
/// ordinary topic.
#[must_use]
pub fn topic(app_id: &str, channel: &str) -> String {
    let mut t = String::with_capacity(TOPIC_PREFIX.len() + app_id.len() + 1 + channel.len());
    t.push_str(TOPIC_PREFIX);
    t.push_str(app_id);
    t.push('/');
    t.push_str(channel);
    t
}

/// The app id and channel of a topic made by [`topic`] (app ids hold no `/`).
#[must_use]
pub fn split_topic(topic: &str) -> Option<(&str, &str)> {
    topic.strip_prefix(TOPIC_PREFIX)?.split_once('/')
}

/// A connection's client-event budget: at most `per_second` events in each one-second
/// window (Pusher's documented default is 10/s); past it, each event is refused with 4301
/// and not delivered, and the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEventBudget {
    per_second: u32,
    window_start_ms: u64,
    used: u32,
}

impl ClientEventBudget {
    /// A full budget of `per_second` events.
    #[must_use]
    pub const fn new(per_second: u32) -> ClientEventBudget {
        ClientEventBudget {
            per_second,
            window_start_ms: 0,
            used: 0,
        }
    }

    /// Spends one event at `now_ms` (a monotonic clock in milliseconds); false when the
    /// window's budget is spent.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.used = 0;
        }
        if self.used >= self.per_second {
            return false;
        }
        self.used += 1;
        true
    }
}
