//! Pusher webhooks (issue 24 item 4, docs/pusher-webhooks.md): events emitted by the workers
//! are debounced (a vacated/removed cancelled by a quick occupied/added), batched per app,
//! signed with the app's secret and POSTed to each of its URLs, with retries, off the workers.
//!
//! Threads: `emit` only `try_send`s into a bounded channel. One pump thread
//! (`ringcast-webhooks`) debounces, batches and signs ([`pump`]); one sender thread per URL
//! POSTs that URL's batches in order with blocking `std` sockets and retries ([`sender`]),
//! so a slow or dead receiver delays only its own URL. Every queue is bounded; what does not
//! fit is dropped and counted. `http://` and `https://` URLs ([`tls`]: rustls, the system's
//! CA certificates plus `--pusher-webhook-ca`).

mod answer;
mod backoff;
mod batch;
mod debounce;
mod failure;
mod http;
mod keep;
#[cfg(test)]
mod keep_tests;
mod metrics;
#[cfg(test)]
mod post_cost;
mod pump;
#[cfg(test)]
mod sdk_tests;
mod sender;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use ringcast_pusher::app::Apps;
use ringcast_pusher::webhook::Event;

pub use self::backoff::Backoff;
pub use self::http::UrlError;
pub use self::tls::{CaError, check_ca};

/// Whether `url` is a webhook URL this module can deliver to (`http[s]://host[:port]/…`):
/// the configuration checks every app's URLs with it, so a bad one stops the start (exit 2).
///
/// # Errors
/// [`UrlError`]: another scheme or a bad host or port.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    self::http::Target::parse(url).map(|_| ())
}
use self::metrics::{Fate, WebhookMetrics};

/// How webhooks are delivered. The defaults follow Pusher's service where it documents one
/// (3 s debounce, exponential backoff); see docs/pusher-webhooks.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// A batch is sent this long after its first event (unless full before).
    pub batch_window: Duration,
    /// Most events in one POST.
    pub batch_max_events: usize,
    /// How long a vacated/removed waits for the occupied/added that cancels it.
    pub debounce: Duration,
    /// One attempt's connect + send + status line.
    pub timeout: Duration,
    /// Retries of a failed POST.
    pub backoff: Backoff,
    /// Events `emit` may queue before it drops (the pump's intake).
    pub queue_events: usize,
    /// Vacated/removed events held for the debounce at once (past it: sent undebounced).
    pub debounce_max: usize,
    /// Batches waiting per URL before new ones are dropped.
    pub queue_batches: usize,
    /// Bytes the waiting events of one app may hold (their strings, then their signed
    /// bodies); an event that does not fit is dropped at `emit`.
    pub max_queued_bytes: u64,
    /// A PEM file of CA certificates trusted for `https://` URLs besides the system's
    /// (`--pusher-webhook-ca`).
    pub ca_file: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            batch_window: Duration::from_millis(50),
            batch_max_events: 100,
            debounce: Duration::from_secs(3),
            timeout: Duration::from_secs(5),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                attempts: 8,
            },
            queue_events: 10_000,
            debounce_max: 10_000,
            queue_batches: 64,
            max_queued_bytes: 32 << 20,
            ca_file: None,
        }
    }
}

/// Why webhooks cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// An app's webhook URL is not an `http://` or `https://` URL with a host.
    #[error("app {app:?}: webhook URL {url:?}: {reason}")]
    Url {
        /// The app id.
        app: String,
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: UrlError,
    },
    /// A zero queue, batch size or attempt count.
    #[error("webhook settings: {0} must be at least 1")]
    Zero(&'static str),
    /// The TLS client of `https://` URLs cannot be made (a bad `--pusher-webhook-ca`).
    #[error("{0}")]
    Ca(#[from] CaError),
    /// A delivery thread could not be started.
    #[error("webhooks: cannot start a delivery thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// One emitted event on its way: the app's index among the apps with webhooks, the event,
/// when it was emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The app's index.
    pub app: usize,
    /// The event.
    pub event: Event,
    /// When `emit` took it.
    pub at: Instant,
}

/// Cheap to clone, Send + Sync; one per server, a clone in every worker.
#[derive(Clone)]
pub struct Webhooks {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    intake: Sender<Queued>,
    /// App id → index, for the apps with at least one URL.
    apps: HashMap<String, usize>,
    metrics: Arc<WebhookMetrics>,
    max_bytes: u64,
}

impl Webhooks {
    /// No app has a webhook URL: every emit is a no-op, no thread.
    #[must_use]
    pub fn disabled() -> Webhooks {
        Webhooks { inner: None }
    }

    /// Starts the delivery thread (off the workers) for the apps that have webhook URLs.
    ///
    /// # Errors
    /// [`WebhookError`]: a URL that is neither `http://` nor `https://`, a zero bound, a bad
    /// CA file, a thread that cannot be spawned.
    pub fn start(apps: Arc<Apps>, config: WebhookConfig) -> Result<Webhooks, WebhookError> {
        let hooked: Vec<_> = apps
            .all()
            .iter()
            .filter(|a| !a.webhooks.is_empty())
            .collect();
        if hooked.is_empty() {
            return Ok(Webhooks::disabled());
        }
        for (what, n) in [
            ("queue_events", config.queue_events),
            ("queue_batches", config.queue_batches),
            ("batch_max_events", config.batch_max_events),
            ("backoff.attempts", config.backoff.attempts as usize),
            ("max_queued_bytes", usize::from(config.max_queued_bytes > 0)),
        ] {
            if n == 0 {
                return Err(WebhookError::Zero(what));
            }
        }
        let mut targets = Vec::with_capacity(hooked.len());
        for app in &hooked {
            let urls = app.webhooks.iter().map(|url| {
                http::Target::parse(url).map_err(|reason| WebhookError::Url {
                    app: app.id.clone(),
                    url: url.clone(),
                    reason,
                })
            });
            targets.push(urls.collect::<Result<Vec<_>, _>>()?);
        }
        // The system's roots are read once, and only when some URL needs them.
        let https = targets.iter().flatten().any(http::Target::is_https);
        let tls = if https {
            Some(tls::client_config(config.ca_file.as_deref())?)
        } else {
            None
        };
        let ids: Vec<String> = hooked.iter().map(|a| a.id.clone()).collect();
        let metrics = Arc::new(WebhookMetrics::new(ids.clone()));
        let signers = hooked.into_iter().cloned().collect();
        let (intake, rx) = crossbeam_channel::bounded(config.queue_events);
        pump::spawn(rx, signers, targets, tls, &config, metrics.clone())?;
        let apps = ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
        Ok(Webhooks {
            inner: Some(Arc::new(Inner {
                intake,
                apps,
                metrics,
                max_bytes: config.max_queued_bytes,
            })),
        })
    }

    /// Queues one event for the app's URLs; never blocks, never allocates without bound
    /// (a full queue drops the event and counts it).
    pub fn emit(&self, app_id: &str, event: Event) {
        let Some(inner) = &self.inner else { return };
        let Some(&app) = inner.apps.get(app_id) else {
            return;
        };
        let bytes = weight(&event);
        if !inner.metrics.reserve(app, bytes, inner.max_bytes) {
            inner.metrics.refused(app);
            return;
        }
        // Counted as waiting before it is sent, so the pump never settles it first.
        inner.metrics.queue(1);
        let queued = Queued {
            app,
            event,
            at: Instant::now(),
        };
        match inner.intake.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                inner.metrics.events(app, Fate::Dropped, 1);
                inner.metrics.release(app, bytes);
            }
        }
    }

    /// Appends the webhook metrics in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        if let Some(inner) = &self.inner {
            inner.metrics.render(out);
        }
    }
}

/// The bytes an event holds while it waits: its strings and its place in a queue.
fn weight(event: &Event) -> u64 {
    let strings = match event {
        Event::ChannelOccupied { channel }
        | Event::ChannelVacated { channel }
        | Event::CacheMiss { channel }
        | Event::SubscriptionCount { channel, .. } => channel.len(),
        Event::MemberAdded { channel, user_id } | Event::MemberRemoved { channel, user_id } => {
            channel.len() + user_id.len()
        }
        Event::ClientEvent {
            channel,
            event,
            data,
            user_id,
            ..
        } => channel.len() + event.len() + data.len() + user_id.as_ref().map_or(0, String::len),
    };
    (strings + std::mem::size_of::<Queued>()) as u64
}
