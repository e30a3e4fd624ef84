//! One URL's sender thread: its signed batches in order, each POSTed until a 2xx or until
//! the attempts run out, waiting the backoff between attempts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::WebhookConfig;
use super::backoff::Backoff;
use super::http::Target;
use super::metrics::{Fate, WebhookMetrics};

/// A batch's body, signed once for all the app's URLs; its bytes count in
/// `WebhookMetrics::held_bytes` until the last URL is done with it.
pub struct Signed {
    /// Where its bytes are counted.
    pub metrics: Arc<WebhookMetrics>,
    /// The app's index.
    pub app: usize,
    /// Events in the body.
    pub events: u64,
    /// When its oldest event was emitted.
    pub oldest: Instant,
    /// `X-Pusher-Key`.
    pub key: String,
    /// `X-Pusher-Signature`: hex HMAC-SHA256 of `body` under the app's secret.
    pub signature: String,
    /// `{"time_ms":…,"events":[…]}`.
    pub body: Vec<u8>,
}

impl Drop for Signed {
    fn drop(&mut self) {
        self.metrics.release(self.app, self.body.capacity() as u64);
    }
}

/// Starts the sender thread of `target` (a URL of app `app`); its bounded queue.
pub fn spawn(
    app: usize,
    target: Target,
    config: &WebhookConfig,
    metrics: Arc<WebhookMetrics>,
) -> std::io::Result<Sender<Arc<Signed>>> {
    let (tx, rx) = crossbeam_channel::bounded(config.queue_batches);
    let (timeout, backoff) = (config.timeout, config.backoff);
    std::thread::Builder::new()
        .name(format!("rc-webhook-{app}"))
        .spawn(move || run(&rx, &target, timeout, backoff, &metrics))?;
    Ok(tx)
}

fn run(
    rx: &Receiver<Arc<Signed>>,
    target: &Target,
    timeout: Duration,
    backoff: Backoff,
    metrics: &WebhookMetrics,
) {
    for signed in rx {
        let headers = [
            ("X-Pusher-Key", signed.key.as_str()),
            ("X-Pusher-Signature", signed.signature.as_str()),
        ];
        let mut attempt = 1;
        loop {
            let failure = match target.post(&signed.body, &headers, timeout) {
                Ok(_) => {
                    metrics.delivered_after(signed.app, signed.oldest.elapsed());
                    metrics.events(signed.app, Fate::Sent, signed.events);
                    break;
                }
                Err(e) => e,
            };
            let wait = backoff.after(attempt);
            metrics.attempt_failed(signed.app, failure.label(), wait.is_some());
            let Some(wait) = wait else {
                tracing::warn!(
                    url = target.authority(),
                    attempts = attempt,
                    events = signed.events,
                    "webhook batch dropped after its last attempt: {failure}"
                );
                metrics.events(signed.app, Fate::Failed, signed.events);
                break;
            };
            tracing::debug!(
                url = target.authority(),
                attempt,
                "webhook POST failed: {failure}"
            );
            // The backoff itself: this thread serves one URL, which is failing.
            std::thread::sleep(wait);
            attempt += 1;
        }
        // Its bytes are given back (by the last URL's drop) before it counts as settled.
        drop(signed);
        metrics.settled();
    }
}
