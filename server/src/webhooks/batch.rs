//! Batching per app: the events of one app gathered for a short window (from the first event
//! of the batch) or until a count cap, then sent as one POST. Pure: the caller passes the time.

use std::time::{Duration, Instant};

use ringcast_pusher::webhook::Event;

use super::{Queued, weight};

/// The events of one POST.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    /// The app's index.
    pub app: usize,
    /// Its events, in the order they were queued.
    pub events: Vec<Event>,
    /// When its oldest event was emitted (the latency metric starts there).
    pub oldest: Instant,
    /// Its events' weight (`super::weight`).
    pub bytes: u64,
}

struct Open {
    events: Vec<Event>,
    bytes: u64,
    opened: Instant,
    oldest: Instant,
}

/// One open batch per app at most.
pub struct Batcher {
    window: Duration,
    max_events: usize,
    open: Vec<Option<Open>>,
}

impl Batcher {
    /// Batches for `apps` apps, each closed `window` after its first event or at `max_events`.
    #[must_use]
    pub fn new(apps: usize, window: Duration, max_events: usize) -> Batcher {
        Batcher {
            window,
            max_events: max_events.max(1),
            open: (0..apps).map(|_| None).collect(),
        }
    }

    /// Adds one event at `now`; the batch it filled up, if it did.
    pub fn push(&mut self, item: Queued, now: Instant) -> Option<Batch> {
        let slot = self.open.get_mut(item.app)?;
        let open = slot.get_or_insert_with(|| Open {
            events: Vec::new(),
            bytes: 0,
            opened: now,
            oldest: item.at,
        });
        open.bytes += weight(&item.event);
        open.events.push(item.event);
        open.oldest = open.oldest.min(item.at);
        if open.events.len() < self.max_events {
            return None;
        }
        slot.take().map(|o| close(item.app, o))
    }

    /// When the first open batch's window ends.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.open.iter().flatten())
            .map(|o| o.opened + self.window)
            .min()
    }

    /// Passes the batches whose window ended by `now` to `out`.
    pub fn due(&mut self, now: Instant, mut out: impl FnMut(Batch)) {
        for (app, slot) in self.open.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|o| o.opened + self.window <= now)
                && let Some(o) = slot.take()
            {
                out(close(app, o));
            }
        }
    }

    /// Passes every open batch to `out` (the server is stopping).
    pub fn flush_all(&mut self, mut out: impl FnMut(Batch)) {
        for (app, slot) in self.open.iter_mut().enumerate() {
            if let Some(o) = slot.take() {
                out(close(app, o));
            }
        }
    }

    #[cfg(test)]
    /// Events waiting in open batches.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.iter().flatten().map(|o| o.events.len()).sum()
    }
}

fn close(app: usize, o: Open) -> Batch {
    Batch {
        app,
        events: o.events,
        oldest: o.oldest,
        bytes: o.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn ev(n: usize) -> Event {
        Event::ChannelOccupied {
            channel: format!("c{n}"),
        }
    }
    fn q(app: usize, n: usize, at: Instant) -> Queued {
        Queued {
            app,
            event: ev(n),
            at,
        }
    }
    fn due(b: &mut Batcher, now: Instant) -> Vec<Batch> {
        let mut out = Vec::new();
        b.due(now, |x| out.push(x));
        out
    }

    #[test]
    fn events_within_the_window_go_in_one_batch_per_app() {
        let t0 = Instant::now();
        let mut b = Batcher::new(2, ms(50), 100);
        assert_eq!(b.push(q(0, 1, t0), t0), None);
        assert_eq!(b.push(q(1, 2, t0 + ms(10)), t0 + ms(10)), None);
        assert_eq!(b.push(q(0, 3, t0 + ms(49)), t0 + ms(49)), None);
        assert_eq!(b.next_deadline(), Some(t0 + ms(50)));
        assert_eq!(due(&mut b, t0 + ms(49)), vec![]);
        assert_eq!(
            due(&mut b, t0 + ms(50)),
            vec![Batch {
                app: 0,
                events: vec![ev(1), ev(3)],
                oldest: t0,
                bytes: weight(&ev(1)) + weight(&ev(3)),
            }]
        );
        // The window runs from each batch's first event.
        assert_eq!(b.next_deadline(), Some(t0 + ms(60)));
        assert_eq!(due(&mut b, t0 + ms(60)).len(), 1);
        assert_eq!(b.next_deadline(), None);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn the_count_cap_closes_a_batch_at_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(1, ms(50), 100);
        let mut full = Vec::new();
        for n in 0..250 {
            full.extend(b.push(q(0, n, t0), t0));
        }
        let sizes: Vec<_> = full.iter().map(|x| x.events.len()).collect();
        assert_eq!(sizes, [100, 100]);
        assert_eq!(full[1].events[0], ev(100));
        assert_eq!(b.len(), 50);
        let mut rest = Vec::new();
        b.flush_all(|x| rest.push(x));
        assert_eq!(rest[0].events.len(), 50);
    }

    #[test]
    fn the_oldest_emit_time_is_kept_and_unknown_apps_are_ignored() {
        let t0 = Instant::now();
        let mut b = Batcher::new(1, ms(50), 2);
        // An event emitted earlier but debounced reaches the batcher after a newer one.
        b.push(q(0, 1, t0 + ms(5)), t0 + ms(5));
        let full = b.push(q(0, 2, t0), t0 + ms(6));
        assert_eq!(full.map(|x| x.oldest), Some(t0));
        assert_eq!(b.push(q(7, 1, t0), t0), None);
        assert_eq!(b.len(), 0);
    }
}
