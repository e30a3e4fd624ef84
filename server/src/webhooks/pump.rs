//! The pump thread: takes what `emit` queued, runs it through the debounce and the batcher,
//! signs each batch once and hands it to each of its app's URL senders.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ringcast_pusher::app::App;
use ringcast_pusher::webhook;
use rustls::ClientConfig;

use super::batch::{Batch, Batcher};
use super::debounce::{Debounce, Step};
use super::http::Target;
use super::metrics::{Fate, WebhookMetrics};
use super::sender::{self, Endpoint, Signed};
use super::{Queued, WebhookConfig};

/// Most events taken from the intake in one go before deadlines are looked at again, so a
/// flood of emits cannot hold back a due batch.
const DRAIN_MAX: usize = 1024;

/// Starts one sender thread per URL (each `https://` one with `tls`), then the pump thread.
pub fn spawn(
    rx: Receiver<Queued>,
    signers: Vec<App>,
    targets: Vec<Vec<Target>>,
    tls: Option<Arc<ClientConfig>>,
    config: &WebhookConfig,
    metrics: Arc<WebhookMetrics>,
) -> std::io::Result<()> {
    let mut urls = Vec::with_capacity(targets.len());
    for (app, targets) in targets.into_iter().enumerate() {
        let mut txs = Vec::with_capacity(targets.len());
        for target in targets {
            let endpoint = Endpoint {
                tls: tls.clone().filter(|_| target.is_https()),
                target,
            };
            txs.push(sender::spawn(app, endpoint, config, metrics.clone())?);
        }
        urls.push(txs);
    }
    let mut pump = Pump {
        debounce: Debounce::new(config.debounce, config.debounce_max),
        batcher: Batcher::new(signers.len(), config.batch_window, config.batch_max_events),
        signers,
        urls,
        metrics,
    };
    std::thread::Builder::new()
        .name("ringcast-webhooks".into())
        .spawn(move || pump.run(&rx))?;
    Ok(())
}

struct Pump {
    debounce: Debounce,
    batcher: Batcher,
    /// Each app's id, key and secret, by index.
    signers: Vec<App>,
    /// Each app's URL senders, by index.
    urls: Vec<Vec<Sender<Arc<Signed>>>>,
    metrics: Arc<WebhookMetrics>,
}

impl Pump {
    fn run(&mut self, rx: &Receiver<Queued>) {
        loop {
            let deadline = match (self.debounce.next_deadline(), self.batcher.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let got = match deadline {
                Some(d) => rx.recv_deadline(d),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(first) => {
                    self.take(first);
                    for q in rx.try_iter().take(DRAIN_MAX) {
                        self.take(q);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            let mut ready = Vec::new();
            self.debounce.due(now, |q| ready.push(q));
            for q in ready {
                self.batch(q, now);
            }
            let mut closed = Vec::new();
            self.batcher.due(now, |b| closed.push(b));
            for b in closed {
                self.dispatch(b);
            }
        }
        // Every `Webhooks` is gone: send what is held and open, then let the senders finish.
        let mut ready = Vec::new();
        self.debounce.release_all(|q| ready.push(q));
        let now = Instant::now();
        for q in ready {
            self.batch(q, now);
        }
        let mut closed = Vec::new();
        self.batcher.flush_all(|b| closed.push(b));
        for b in closed {
            self.dispatch(b);
        }
    }

    fn take(&mut self, q: Queued) {
        let now = Instant::now();
        match self.debounce.push(q, now) {
            Step::Pass(q) => self.batch(q, now),
            Step::Held => {}
            Step::Cancelled { app, bytes } => {
                self.metrics.events(app, Fate::Debounced, 2);
                self.metrics.release(app, bytes);
            }
        }
    }

    fn batch(&mut self, q: Queued, now: Instant) {
        if let Some(full) = self.batcher.push(q, now) {
            self.dispatch(full);
        }
    }

    /// Signs `batch` once and queues it at each of its app's URLs.
    fn dispatch(&mut self, batch: Batch) {
        let (Some(app), Some(urls)) = (self.signers.get(batch.app), self.urls.get(batch.app))
        else {
            return;
        };
        let n = batch.events.len() as u64;
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut body = Vec::with_capacity(64 + 96 * batch.events.len());
        webhook::body(&mut body, time_ms, &batch.events);
        // From here the body holds the batch's bytes: the events go when this returns.
        self.metrics.hold(batch.app, body.capacity() as u64);
        self.metrics.release(batch.app, batch.bytes);
        let mut signed = Some(Arc::new(Signed {
            metrics: self.metrics.clone(),
            app: batch.app,
            events: n,
            oldest: batch.oldest,
            key: app.key.clone(),
            signature: webhook::signature(app, &body),
            body,
        }));
        // Each URL settles its own copy of the events.
        self.metrics
            .queue(n * (urls.len() as u64).saturating_sub(1));
        for (i, tx) in urls.iter().enumerate() {
            // The last URL takes the pump's reference: once the senders are done, the body is
            // freed (and its bytes given back) before they say it is settled.
            let copy = if i + 1 == urls.len() {
                signed.take()
            } else {
                signed.clone()
            };
            if let Some(Err(refused)) = copy.map(|c| tx.try_send(c)) {
                drop(refused);
                self.metrics.events(batch.app, Fate::Dropped, n);
                self.metrics.settled();
            }
        }
    }
}
