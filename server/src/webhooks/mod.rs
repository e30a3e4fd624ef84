//! Webhook emission of the Pusher apps (docs/pusher.md#webhooks), the interface agreed
//! between the Pusher dialect and the webhooks module. This is the stub the dialect builds
//! against until the webhooks branch (a delivery thread off the workers, batching, retries,
//! debounce) is merged: every emit is dropped. The lead resolves the merge by taking the
//! real module.

use std::sync::Arc;

use ringcast_pusher::app::Apps;
use ringcast_pusher::webhook::Event;

/// How webhooks are delivered (the real module's settings).
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {}

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The delivery thread could not be started.
    #[error("cannot start the webhook thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Cheap to clone, Send + Sync; one per server, a clone in every worker.
#[derive(Clone, Default)]
pub struct Webhooks {
    _apps: Option<Arc<Apps>>,
}

impl Webhooks {
    /// No app has a webhook URL: every emit is a no-op, no thread.
    pub fn disabled() -> Webhooks {
        Webhooks::default()
    }

    /// Starts the delivery thread (off the workers) for the apps that have webhook URLs.
    /// The stub starts none.
    ///
    /// # Errors
    /// [`WebhookError`] when the thread cannot start (never, in the stub).
    pub fn start(apps: Arc<Apps>, config: WebhookConfig) -> Result<Webhooks, WebhookError> {
        let _ = config;
        Ok(Webhooks { _apps: Some(apps) })
    }

    /// Queues one event for the app's URLs; never blocks, never allocates without bound
    /// (a full queue drops the event and counts it). The stub drops it.
    pub fn emit(&self, app_id: &str, event: Event) {
        let _ = (app_id, event);
    }

    /// Appends the webhook metrics in Prometheus text format (none in the stub).
    pub fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
}
