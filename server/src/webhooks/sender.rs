//! One URL's sender thread: its signed batches in order, each POSTed until a 2xx or until
//! the attempts run out, waiting the backoff between attempts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rustls::ClientConfig;

use super::WebhookConfig;
use super::backoff::Backoff;
use super::failure::PostError;
use super::http::Target;
use super::keep::Kept;
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

/// How one URL is reached: its parsed URL, the TLS client of an `https://` one.
pub struct Endpoint {
    /// The URL.
    pub target: Target,
    /// Given to every `https://` URL (shared: one session cache).
    pub tls: Option<Arc<ClientConfig>>,
}

/// Starts the sender thread of `endpoint` (a URL of app `app`); its bounded queue.
pub fn spawn(
    app: usize,
    endpoint: Endpoint,
    config: &WebhookConfig,
    metrics: Arc<WebhookMetrics>,
) -> std::io::Result<Sender<Arc<Signed>>> {
    let (tx, rx) = crossbeam_channel::bounded(config.queue_batches);
    let (timeout, backoff) = (config.timeout, config.backoff);
    std::thread::Builder::new()
        .name(format!("rc-webhook-{app}"))
        .spawn(move || run(&rx, &endpoint, timeout, backoff, &metrics))?;
    Ok(tx)
}

fn run(
    rx: &Receiver<Arc<Signed>>,
    endpoint: &Endpoint,
    timeout: Duration,
    backoff: Backoff,
    metrics: &WebhookMetrics,
) {
    let target = &endpoint.target;
    let mut tls_notice = TlsNotice::default();
    // The connection of the last POST, while the receiver keeps it open.
    let mut kept = Kept::default();
    for signed in rx {
        let headers = [
            ("X-Pusher-Key", signed.key.as_str()),
            ("X-Pusher-Signature", signed.signature.as_str()),
        ];
        let mut attempt = 1;
        loop {
            let tls = endpoint.tls.as_ref();
            let request = (signed.body.as_slice(), headers.as_slice());
            let failure = match target.post(&mut kept, request, timeout, tls) {
                Ok(_) => {
                    tls_notice.delivered(target);
                    metrics.delivered_after(signed.app, signed.oldest.elapsed());
                    metrics.events(signed.app, Fate::Sent, signed.events);
                    break;
                }
                Err(e) => e,
            };
            tls_notice.failed(target, &failure);
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

/// A URL's TLS failures logged once, not once per attempt: a warning when one starts (or
/// its reason changes), a note when a POST gets through again. A receiver with a bad
/// certificate fails every attempt of every batch until someone fixes it.
#[derive(Default)]
struct TlsNotice {
    /// The reason last warned about, while the failures go on.
    warned: Option<String>,
}

impl TlsNotice {
    fn failed(&mut self, target: &Target, failure: &PostError) {
        let PostError::Tls(e) = failure else { return };
        let reason = e.to_string();
        if self.warned.as_deref() != Some(reason.as_str()) {
            tracing::warn!(
                url = target.authority(),
                "webhook TLS failure, retried with backoff (not logged again until it \
                 changes or a POST succeeds): {reason}"
            );
            self.warned = Some(reason);
        }
    }

    fn delivered(&mut self, target: &Target) {
        if self.warned.take().is_some() {
            tracing::info!(url = target.authority(), "webhook TLS works again");
        }
    }
}
