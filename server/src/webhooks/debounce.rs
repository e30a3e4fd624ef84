//! Debounce of `channel_vacated` and `member_removed` (Pusher's service waits 3 seconds): such
//! an event is held for the window; a `channel_occupied` of the same app and channel (a
//! `member_added` of the same user) within it cancels both, so a quick reconnect sends
//! nothing. Pure: the caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ringcast_pusher::webhook::Event;

use super::{Queued, weight};

/// What [`Debounce::push`] did with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send it now (not debounced, or nothing to cancel, or the window is full).
    Pass(Queued),
    /// Held until the window ends (a vacated or removed).
    Held,
    /// It cancelled a held event of app `app`: neither is sent.
    Cancelled {
        /// The app's index.
        app: usize,
        /// Both events' weight (`super::weight`), to give back.
        bytes: u64,
    },
}

/// The app, the channel and, for members, the user: what a cancelling event must match.
type Key = (usize, String, Option<String>);

struct Held {
    seq: u64,
    until: Instant,
    /// `None` once cancelled (its place stays until it is due, so the queue stays in
    /// deadline order).
    item: Option<Queued>,
}

/// The held events, in arrival order (so in deadline order), at most `cap` of them.
pub struct Debounce {
    window: Duration,
    cap: usize,
    held: VecDeque<Held>,
    by_key: HashMap<Key, u64>,
    next_seq: u64,
}

impl Debounce {
    /// Holds vacated/removed events for `window`, at most `cap` at once (past it they pass
    /// undebounced, so memory stays bounded).
    #[must_use]
    pub fn new(window: Duration, cap: usize) -> Debounce {
        Debounce {
            window,
            cap,
            held: VecDeque::new(),
            by_key: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Takes one event at `now`.
    pub fn push(&mut self, item: Queued, now: Instant) -> Step {
        match &item.event {
            Event::ChannelVacated { channel } => {
                let key = (item.app, channel.clone(), None);
                self.hold(key, item, now)
            }
            Event::MemberRemoved { channel, user_id } => {
                let key = (item.app, channel.clone(), Some(user_id.clone()));
                self.hold(key, item, now)
            }
            Event::ChannelOccupied { channel } => {
                self.cancel(&(item.app, channel.clone(), None), item)
            }
            Event::MemberAdded { channel, user_id } => {
                let key = (item.app, channel.clone(), Some(user_id.clone()));
                self.cancel(&key, item)
            }
            _ => Step::Pass(item),
        }
    }

    fn hold(&mut self, key: Key, item: Queued, now: Instant) -> Step {
        if self.window.is_zero() || self.held.len() >= self.cap {
            return Step::Pass(item);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_key.insert(key, seq);
        self.held.push_back(Held {
            seq,
            until: now + self.window,
            item: Some(item),
        });
        Step::Held
    }

    fn cancel(&mut self, key: &Key, item: Queued) -> Step {
        let Some(seq) = self.by_key.remove(key) else {
            return Step::Pass(item);
        };
        // Sequence numbers are consecutive from the front, so the place is an index.
        let front = self.held.front().map_or(0, |h| h.seq);
        let found = (seq.checked_sub(front))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.held.get_mut(i));
        match found.and_then(|h| h.item.take()) {
            Some(held) => Step::Cancelled {
                app: item.app,
                bytes: weight(&held.event) + weight(&item.event),
            },
            None => Step::Pass(item),
        }
    }

    /// When the first held event is due.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.front().map(|h| h.until)
    }

    /// Passes the events whose window ended by `now` to `out`, in arrival order.
    pub fn due(&mut self, now: Instant, mut out: impl FnMut(Queued)) {
        while self.held.front().is_some_and(|h| h.until <= now) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            if let Some(item) = h.item {
                self.forget(&item, h.seq);
                out(item);
            }
        }
    }

    /// Passes every held event to `out` at once (the server is stopping).
    pub fn release_all(&mut self, out: impl FnMut(Queued)) {
        self.due(Instant::now() + self.window + Duration::from_secs(1), out);
    }

    /// Drops the key of a released event unless a later hold of the same key owns it.
    fn forget(&mut self, item: &Queued, seq: u64) {
        let key = match &item.event {
            Event::ChannelVacated { channel } => (item.app, channel.clone(), None),
            Event::MemberRemoved { channel, user_id } => {
                (item.app, channel.clone(), Some(user_id.clone()))
            }
            _ => return,
        };
        if self.by_key.get(&key) == Some(&seq) {
            self.by_key.remove(&key);
        }
    }

    #[cfg(test)]
    /// Events held now (cancelled places included: they count towards the cap).
    #[must_use]
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(app: usize, event: Event, at: Instant) -> Queued {
        Queued { app, event, at }
    }
    fn vacated(c: &str) -> Event {
        Event::ChannelVacated { channel: c.into() }
    }
    fn occupied(c: &str) -> Event {
        Event::ChannelOccupied { channel: c.into() }
    }
    fn removed(c: &str, u: &str) -> Event {
        Event::MemberRemoved {
            channel: c.into(),
            user_id: u.into(),
        }
    }
    fn added(c: &str, u: &str) -> Event {
        Event::MemberAdded {
            channel: c.into(),
            user_id: u.into(),
        }
    }
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn due(d: &mut Debounce, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        d.due(now, |i| out.push(i.event));
        out
    }

    #[test]
    fn a_quick_reconnect_sends_nothing() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(3000), 100);
        assert_eq!(d.push(q(0, vacated("c"), t0), t0), Step::Held);
        assert_eq!(d.push(q(0, removed("p", "u"), t0), t0), Step::Held);
        let later = t0 + ms(2999);
        // Both events' weight is given back.
        let both = weight(&vacated("c")) + weight(&occupied("c"));
        assert_eq!(
            d.push(q(0, occupied("c"), later), later),
            Step::Cancelled {
                app: 0,
                bytes: both
            }
        );
        let both = weight(&removed("p", "u")) + weight(&added("p", "u"));
        assert_eq!(
            d.push(q(0, added("p", "u"), later), later),
            Step::Cancelled {
                app: 0,
                bytes: both
            }
        );
        assert_eq!(due(&mut d, t0 + ms(10_000)), Vec::<Event>::new());
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn a_vacated_without_reconnect_is_sent_when_its_window_ends() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(3000), 100);
        assert_eq!(d.push(q(0, vacated("c"), t0), t0), Step::Held);
        assert_eq!(d.next_deadline(), Some(t0 + ms(3000)));
        assert_eq!(due(&mut d, t0 + ms(2999)), Vec::<Event>::new());
        assert_eq!(due(&mut d, t0 + ms(3000)), vec![vacated("c")]);
        // The window is over: an occupied now is a new occupation, sent.
        let t1 = t0 + ms(3001);
        assert_eq!(
            d.push(q(0, occupied("c"), t1), t1),
            Step::Pass(q(0, occupied("c"), t1))
        );
    }

    #[test]
    fn only_the_same_app_channel_and_user_cancel() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(1000), 100);
        d.push(q(0, vacated("c"), t0), t0);
        d.push(q(0, removed("p", "u"), t0), t0);
        // Another app, another channel, another user, or the other kind: all pass.
        for e in [
            q(1, occupied("c"), t0),
            q(0, occupied("d"), t0),
            q(0, added("p", "v"), t0),
            q(0, occupied("p"), t0),
            q(0, added("c", "u"), t0),
        ] {
            assert_eq!(d.push(e.clone(), t0), Step::Pass(e));
        }
        assert_eq!(
            due(&mut d, t0 + ms(1000)),
            vec![vacated("c"), removed("p", "u")]
        );
    }

    #[test]
    fn occupied_first_passes_and_a_second_flap_is_held_again() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(1000), 100);
        let first = q(0, occupied("c"), t0);
        assert_eq!(d.push(first.clone(), t0), Step::Pass(first));
        d.push(q(0, vacated("c"), t0), t0);
        d.push(q(0, occupied("c"), t0 + ms(1)), t0 + ms(1));
        assert_eq!(
            d.push(q(0, vacated("c"), t0 + ms(2)), t0 + ms(2)),
            Step::Held
        );
        assert_eq!(due(&mut d, t0 + ms(1001)), Vec::<Event>::new());
        assert_eq!(due(&mut d, t0 + ms(1002)), vec![vacated("c")]);
    }

    #[test]
    fn past_the_cap_events_pass_undebounced_and_client_events_always_pass() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(1000), 2);
        d.push(q(0, vacated("a"), t0), t0);
        d.push(q(0, vacated("b"), t0), t0);
        let third = q(0, vacated("c"), t0);
        assert_eq!(d.push(third.clone(), t0), Step::Pass(third));
        assert_eq!(d.len(), 2);
        let zero = &mut Debounce::new(Duration::ZERO, 2);
        let v = q(0, vacated("a"), t0);
        assert_eq!(zero.push(v.clone(), t0), Step::Pass(v));
    }

    #[test]
    fn release_all_sends_what_is_held_but_not_what_was_cancelled() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(3000), 10);
        d.push(q(0, vacated("a"), t0), t0);
        d.push(q(0, vacated("b"), t0), t0);
        d.push(q(0, occupied("a"), t0), t0);
        let mut out = Vec::new();
        d.release_all(|i| out.push(i.event));
        assert_eq!(out, vec![vacated("b")]);
    }
}
