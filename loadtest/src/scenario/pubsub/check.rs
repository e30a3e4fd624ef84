//! The pub/sub checks of one subscriber, free of I/O so that crafted message sequences can
//! test them: loss / duplicates / order per publisher, `offset` continuity with history on, and
//! what a resume (`since:{offset,epoch}`) promised, added up in [`PubsubCounters`]. The
//! checks across subscribers are `super::book` (the same message at the same offset) and
//! `super::presence_view` (the snapshot's place and the join / leave events).
use serde::Serialize;

use crate::stats::{SeqEvent, SeqTrack};

/// Pub/sub counters (summed over subscribers and threads); they go into the report as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PubsubCounters {
    /// Subscribers (and publishers) that got their first `subscribed` reply.
    pub subscribed: u64,
    /// Subscribers whose first `subscribed` came after the measured window began (not counted
    /// for loss).
    pub late_subscribers: u64,
    /// `{"op":"error"}` replies.
    pub server_errors: u64,
    /// A message whose `offset` is more than 1 above the previous one at that subscriber.
    pub offset_gaps: u64,
    /// A message whose `offset` is not above the previous one at that subscriber.
    pub offset_dups: u64,
    /// Messages without `offset` although `--history` says the server keeps history.
    pub missing_offsets: u64,
    /// (topic, offset) pairs compared between subscribers.
    pub order_checked: u64,
    /// (topic, offset) pairs at which two subscribers saw different messages.
    pub order_mismatches: u64,
    /// Subscribers dropped on purpose (`--churn`).
    pub churns: u64,
    /// Resumes answered `recovered:true`.
    pub recovered_true: u64,
    /// Resumes answered `recovered:false` (or without `recovered`).
    pub recovered_false: u64,
    /// `recovered:true` resumes followed by a gap or a duplicate before the first live message:
    /// the server's promise broken.
    pub recovery_failures: u64,
    /// Messages replayed after `recovered:true`.
    pub replayed: u64,
    /// Messages skipped by a `recovered:false` resume (explained loss, per publisher sequence).
    pub lost_unrecovered: u64,
    /// A live message whose offset went back to 1: the topic started a new epoch while the
    /// subscriber was subscribed (a cluster bus gap or outage, an eviction; docs/pubsub.md#history).
    pub epoch_restarts: u64,
    /// Subscribers that unsubscribed and resumed on the same connection (`--unsubscribe-churn`).
    pub unsubscribe_churns: u64,
    /// Presence snapshots received right after their `subscribed` (`--presence`).
    pub presence_snapshots: u64,
    /// `join` / `leave` events received.
    pub presence_events: u64,
    /// A message, event or nothing at all where the snapshot should have come: something of the
    /// topic between `subscribed` and the snapshot, a snapshot nobody asked for, or none by the
    /// end (docs/pubsub.md#order-after-a-subscribe).
    pub presence_order_violations: u64,
    /// A `join` for a member already in the subscriber's view or a `leave` for one not in it.
    /// Not a failure: changes lost while Redis is down are not replayed (docs/cluster.md#presence).
    pub presence_anomalies: u64,
}

impl PubsubCounters {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &PubsubCounters) {
        self.subscribed += o.subscribed;
        self.late_subscribers += o.late_subscribers;
        self.server_errors += o.server_errors;
        self.offset_gaps += o.offset_gaps;
        self.offset_dups += o.offset_dups;
        self.missing_offsets += o.missing_offsets;
        self.order_checked += o.order_checked;
        self.order_mismatches += o.order_mismatches;
        self.churns += o.churns;
        self.recovered_true += o.recovered_true;
        self.recovered_false += o.recovered_false;
        self.recovery_failures += o.recovery_failures;
        self.replayed += o.replayed;
        self.lost_unrecovered += o.lost_unrecovered;
        self.epoch_restarts += o.epoch_restarts;
        self.unsubscribe_churns += o.unsubscribe_churns;
        self.presence_snapshots += o.presence_snapshots;
        self.presence_events += o.presence_events;
        self.presence_order_violations += o.presence_order_violations;
        self.presence_anomalies += o.presence_anomalies;
    }
}

/// What a `recovered:true` promised and whether it held so far.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// The `offset` of the `subscribed` reply: messages up to it are the replay.
    upto: u64,
    /// A gap or a duplicate was seen since the reply.
    broken: bool,
}

/// One received copy as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Relative to the publisher's earlier messages at this subscriber.
    pub ev: SeqEvent,
    /// Part of a replay (its latency is meaningless and not recorded).
    pub replayed: bool,
}

/// The checks of one subscriber of one topic.
#[derive(Debug, Clone)]
pub struct SubscriberCheck {
    tracks: Vec<SeqTrack>,
    /// The next message of that publisher follows a `recovered:false`: its gap is explained.
    resync: Vec<bool>,
    /// Per publisher: sequence numbers still missing when a `recovered:false` restarted its
    /// track (lost before the resume, not explained by it).
    lost_before: Vec<Vec<u64>>,
    history: bool,
    last_offset: Option<u64>,
    epoch: Option<String>,
    resuming: bool,
    resume: Option<Resume>,
    excused: u64,
    /// The offsets went back to 1 live: the topic is in an epoch this subscriber does not know
    /// (it keeps the old one to resume with, which must then be `recovered:false`).
    epoch_unknown: bool,
}

impl SubscriberCheck {
    /// A subscriber of a topic with `publishers` publishers; `history`: offsets are checked.
    pub fn new(publishers: usize, history: bool) -> Self {
        Self {
            tracks: vec![SeqTrack::default(); publishers],
            resync: vec![false; publishers],
            lost_before: vec![Vec::new(); publishers],
            history,
            last_offset: None,
            epoch: None,
            resuming: false,
            resume: None,
            excused: 0,
            epoch_unknown: false,
        }
    }

    /// Copies this subscriber missed because a resume was answered `recovered:false`.
    pub fn excused(&self) -> u64 {
        self.excused
    }

    /// The epoch of the topic as this subscriber knows it (`None` after a live restart).
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref().filter(|_| !self.epoch_unknown)
    }

    /// The sequence numbers of publisher `k` in `lo..hi` this subscriber never received (and
    /// that no `recovered:false` excused). Exact for gaps up to `stats::MAX_GAP`.
    pub fn missing_in(&self, k: usize, lo: u64, hi: u64) -> Vec<u64> {
        let t = &self.tracks[k];
        let mut out: Vec<u64> = (t.missing().iter().chain(&self.lost_before[k]).copied())
            .filter(|s| (lo..hi).contains(s))
            .collect();
        out.extend(t.next().max(lo)..hi);
        out
    }

    /// The connection is dropped to resume: returns the `since:{offset,epoch}` to ask for, if
    /// the subscriber knows both. A recovery check still open is closed first.
    pub fn begin_resume(&mut self, c: &mut PubsubCounters) -> Option<(u64, String)> {
        self.close_resume(c);
        self.resuming = true;
        Some((self.last_offset?, self.epoch.clone()?))
    }

    /// A `subscribed` reply (first subscribe or resume).
    pub fn on_subscribed(
        &mut self,
        offset: Option<u64>,
        epoch: Option<&str>,
        recovered: Option<bool>,
        c: &mut PubsubCounters,
    ) {
        self.epoch_unknown = false;
        if !std::mem::take(&mut self.resuming) {
            self.last_offset = offset;
            self.epoch = epoch.map(str::to_owned);
            return;
        }
        if recovered == Some(true) {
            c.recovered_true += 1;
            let last = self.last_offset.unwrap_or(0);
            let upto = offset.unwrap_or(last);
            // The newest message cannot be older than one this subscriber already saw.
            self.resume = Some(Resume {
                upto,
                broken: upto < last,
            });
        } else {
            c.recovered_false += 1;
            self.resync.iter_mut().for_each(|r| *r = true);
            self.last_offset = offset;
            self.epoch = epoch.map(str::to_owned);
        }
    }

    /// A `message` from publisher `k` (index within the topic) with sequence `seq`.
    pub fn on_message(
        &mut self,
        k: usize,
        seq: u64,
        offset: Option<u64>,
        c: &mut PubsubCounters,
    ) -> Seen {
        let mut broken = false;
        let mut replayed = false;
        if self.history {
            match offset {
                None => c.missing_offsets += 1,
                Some(1) if self.last_offset.is_some_and(|l| l >= 1) && !self.replaying() => {
                    // A new epoch began while subscribed: its first message has offset 1
                    // (docs/pubsub.md#history). What was lost across it is the publishers'
                    // sequence gap, counted below; a recovery check ends here, its seam is
                    // judged on what came before.
                    c.epoch_restarts += 1;
                    self.close_resume(c);
                    self.epoch_unknown = true;
                    self.last_offset = Some(1);
                }
                Some(o) => {
                    if let Some(last) = self.last_offset {
                        if o <= last {
                            c.offset_dups += 1;
                            broken = true;
                        } else if o > last + 1 {
                            c.offset_gaps += 1;
                            broken = true;
                        }
                    }
                    self.last_offset = Some(self.last_offset.map_or(o, |l| l.max(o)));
                    if let Some(r) = self.resume {
                        replayed = o <= r.upto;
                    }
                }
            }
        }
        let track = &mut self.tracks[k];
        let ev = if std::mem::take(&mut self.resync[k]) {
            let skipped = seq.saturating_sub(track.next());
            self.excused += skipped;
            c.lost_unrecovered += skipped;
            self.lost_before[k].extend_from_slice(track.missing());
            track.restart_at(seq);
            track.observe(seq)
        } else {
            let gap = seq > track.next();
            let ev = track.observe(seq);
            broken |= gap || ev == SeqEvent::Duplicate;
            ev
        };
        if let Some(r) = &mut self.resume {
            r.broken |= broken;
            if replayed {
                c.replayed += 1;
            } else {
                // The first live message closes the check: the seam is verified too.
                self.close_resume(c);
            }
        }
        Seen { ev, replayed }
    }

    /// Whether a `recovered:true` replay is still short of the offset it promised.
    fn replaying(&self) -> bool {
        (self.resume).is_some_and(|r| self.last_offset.unwrap_or(0) < r.upto)
    }

    /// Closes an open recovery check (first live message, next churn, or the end of the run).
    pub fn close_resume(&mut self, c: &mut PubsubCounters) {
        if let Some(r) = self.resume.take()
            && r.broken
        {
            c.recovery_failures += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(ch: &mut SubscriberCheck, c: &mut PubsubCounters, list: &[(usize, u64, u64)]) {
        for &(k, seq, off) in list {
            ch.on_message(k, seq, Some(off), c);
        }
    }

    #[test]
    fn offsets_in_order_count_nothing() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(2, true));
        ch.on_subscribed(Some(10), Some("e1"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 11), (1, 0, 12), (0, 1, 13)]);
        assert_eq!(c, PubsubCounters::default());
    }

    #[test]
    fn offset_gap_and_duplicate() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 2, 3)]);
        assert_eq!((c.offset_gaps, c.offset_dups), (1, 0));
        let s = ch.on_message(0, 2, Some(3), &mut c);
        assert_eq!(s.ev, SeqEvent::Duplicate);
        assert_eq!((c.offset_gaps, c.offset_dups), (1, 1));
        // A late copy of seq 1 fills the gap: reordered, and its offset goes backwards.
        let s = ch.on_message(0, 1, Some(2), &mut c);
        assert_eq!(s.ev, SeqEvent::Reordered);
        assert_eq!(c.offset_dups, 2);
    }

    #[test]
    fn missing_offset_counted_only_with_history() {
        let mut c = PubsubCounters::default();
        let mut on = SubscriberCheck::new(1, true);
        on.on_message(0, 0, None, &mut c);
        let mut off = SubscriberCheck::new(1, false);
        off.on_message(0, 1, None, &mut c);
        assert_eq!(c.missing_offsets, 1);
    }

    #[test]
    fn honest_recovery_is_clean() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 1, 2)]);
        assert_eq!(ch.begin_resume(&mut c), Some((2, "e".to_owned())));
        ch.on_subscribed(Some(4), Some("e"), Some(true), &mut c);
        let seen: Vec<bool> = [(0, 2, 3), (0, 3, 4), (0, 4, 5)]
            .iter()
            .map(|&(k, s, o)| ch.on_message(k, s, Some(o), &mut c).replayed)
            .collect();
        assert_eq!(seen, [true, true, false]);
        assert_eq!(
            (c.recovered_true, c.replayed, c.recovery_failures),
            (1, 2, 0)
        );
        assert_eq!((c.offset_gaps, c.offset_dups), (0, 0));
    }

    #[test]
    fn recovery_with_nothing_missed() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(5), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 6)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(6), Some("e"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 1, 7)]);
        assert_eq!(
            (c.recovered_true, c.replayed, c.recovery_failures),
            (1, 0, 0)
        );
    }

    #[test]
    fn recovery_with_a_gap_is_a_failure() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(3), Some("e"), Some(true), &mut c);
        // Offset 2 (seq 1) never replayed.
        msgs(&mut ch, &mut c, &[(0, 2, 3), (0, 3, 4)]);
        assert_eq!((c.recovery_failures, c.offset_gaps), (1, 1));
    }

    #[test]
    fn recovery_with_a_duplicate_is_a_failure() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 1, 2)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(3), Some("e"), Some(true), &mut c);
        // The replay starts one too early (offset 2 again), then continues.
        msgs(&mut ch, &mut c, &[(0, 1, 2), (0, 2, 3), (0, 3, 4)]);
        assert_eq!((c.recovery_failures, c.offset_dups), (1, 1));
    }

    #[test]
    fn duplicate_between_replay_and_live_is_a_failure() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(2), Some("e"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 1, 2), (0, 1, 2), (0, 2, 3)]);
        assert_eq!(c.recovery_failures, 1);
    }

    #[test]
    fn broken_recovery_still_open_at_the_end_is_counted() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(5), Some("e"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 3, 4)]);
        assert_eq!(c.recovery_failures, 0);
        ch.close_resume(&mut c);
        assert_eq!(c.recovery_failures, 1);
    }

    #[test]
    fn unrecovered_resume_explains_its_gap() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(2, true));
        ch.on_subscribed(Some(0), Some("e1"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (1, 0, 2)]);
        ch.begin_resume(&mut c);
        // New epoch: offsets restart; publisher 0 skipped seqs 1..=4, publisher 1 nothing.
        ch.on_subscribed(Some(40), Some("e2"), Some(false), &mut c);
        assert_eq!(ch.epoch(), Some("e2"));
        msgs(&mut ch, &mut c, &[(0, 5, 41), (1, 1, 42), (0, 6, 43)]);
        assert_eq!((c.recovered_false, c.lost_unrecovered), (1, 4));
        assert_eq!(ch.missing_in(0, 0, 7), Vec::<u64>::new(), "1..=4 excused");
        assert_eq!(
            (c.offset_gaps, c.offset_dups, c.recovery_failures),
            (0, 0, 0)
        );
    }

    #[test]
    fn resume_without_a_known_offset_asks_for_nothing() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, false));
        ch.on_subscribed(None, None, None, &mut c);
        assert_eq!(ch.begin_resume(&mut c), None);
        ch.on_subscribed(None, None, None, &mut c);
        assert_eq!(c.recovered_false, 1);
    }

    #[test]
    fn live_epoch_restart_is_counted_not_a_duplicate() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(2, true));
        ch.on_subscribed(Some(7), Some("e1"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 8), (1, 0, 9)]);
        // A bus gap: publisher 1's seq 1 lost, the topic restarts at offset 1.
        msgs(&mut ch, &mut c, &[(0, 1, 1), (1, 2, 2), (0, 2, 3)]);
        assert_eq!(c.epoch_restarts, 1);
        assert_eq!((c.offset_gaps, c.offset_dups), (0, 0));
        assert_eq!(ch.epoch(), None, "the new epoch is unknown");
        assert_eq!(ch.missing_in(1, 0, 4), vec![1, 3]);
        assert_eq!(ch.missing_in(0, 1, 3), Vec::<u64>::new());
        // It resumes with the epoch it knew; the server must say false.
        assert_eq!(ch.begin_resume(&mut c), Some((3, "e1".to_owned())));
        ch.on_subscribed(Some(5), Some("e2"), Some(false), &mut c);
        assert_eq!(ch.epoch(), Some("e2"));
    }

    #[test]
    fn loss_before_an_unrecovered_resume_stays_missing() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 3, 2)]);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(9), Some("e2"), Some(false), &mut c);
        msgs(&mut ch, &mut c, &[(0, 6, 10)]);
        // 1 and 2 were lost live; 4 and 5 are explained by the resume.
        assert_eq!(ch.missing_in(0, 0, 7), vec![1, 2]);
        assert_eq!(ch.excused(), 2);
    }

    #[test]
    fn a_restart_before_the_replay_is_complete_breaks_the_recovery() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 1, 2)]);
        ch.begin_resume(&mut c);
        // Promised 3..=5; only 3 comes, then a new epoch's 1: inside the promised replay, so
        // not taken for a restart: a duplicate offset, and the recovery is broken.
        ch.on_subscribed(Some(5), Some("e"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 2, 3), (0, 5, 1)]);
        ch.close_resume(&mut c);
        assert_eq!(
            (c.epoch_restarts, c.offset_dups, c.recovery_failures),
            (0, 1, 1)
        );
        // Complete, then a new epoch: fine.
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(2), Some("f"), Some(false), &mut c);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(3), Some("f"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 6, 3), (0, 7, 1)]);
        assert_eq!((c.epoch_restarts, c.recovery_failures), (1, 1));
    }

    #[test]
    fn replayed_offset_one_is_not_a_restart() {
        let (mut c, mut ch) = (PubsubCounters::default(), SubscriberCheck::new(1, true));
        ch.on_subscribed(Some(0), Some("e"), None, &mut c);
        ch.begin_resume(&mut c);
        ch.on_subscribed(Some(2), Some("e"), Some(true), &mut c);
        msgs(&mut ch, &mut c, &[(0, 0, 1), (0, 1, 2), (0, 2, 3)]);
        assert_eq!(
            (c.epoch_restarts, c.recovery_failures, c.replayed),
            (0, 0, 2)
        );
    }
}
