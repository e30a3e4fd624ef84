//! `pubsub`: the JSON mode of docs/pubsub.md. T topics, each with S subscribers and P publishers; every
//! connection offers the pub/sub subprotocol (`--pubsub-protocol`, default `pubsub`) and
//! subscribes to its topic (`{prefix}{i}`, the same name as room i: one namespace).
//!
//! Publishers send `{"op":"publish","topic":T,"data":"<header><filler>"}` where the data string
//! starts with the 40-hex-digit header (publisher id, sequence, send time, see `payload`).
//! Publishers subscribe to their own topic too, and the copies of their own messages are their
//! flow control: at most `--window` messages ahead of what came back (docs/pubsub.md: the publisher is
//! included when subscribed), so a max-rate run measures the fan-out the server sustains.
//!
//! Subscribers check loss, duplicates and order per publisher, and with `--history` the
//! `offset` continuity and an identical order at every subscriber ([`check`]). With `--churn R`
//! each thread drops a random subscriber R / threads times per second and resumes it with
//! `since:{offset,epoch}`; a `recovered:true` must replay exactly what it missed. With
//! `--unsubscribe-churn R` a random subscriber unsubscribes instead, and resumes the same way on
//! the same connection once `unsubscribed` came back. With `--presence` subscribers ask for
//! presence and check the snapshot's place and the events ([`presence_view::PresenceView`]).
//!
//! With several servers the loss is also split by receiving server ([`summary::NodeLoss`]): copies from
//! publishers on the same server, copies that crossed servers, and the distinct cross-server
//! messages missing there, which a cluster's `ringcast_cluster_gaps_total` on that node must
//! account for (docs/cluster.md#gaps).

pub mod api;
pub mod book;
pub mod check;
mod params;
mod plan;
pub mod presence_view;
mod role;
mod summary;
mod tally;
pub mod wire;

pub use params::Params;
pub use plan::plan;
pub use summary::{PubsubSummary, summarize};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use book::TopicBooks;
use check::PubsubCounters;
use role::{Role, SubState};
use tally::Common;

use super::Scenario;
use crate::conn::Io;
use crate::payload::Header;
use crate::shared::Window;
use crate::stats::SeqEvent;
use crate::target::same_node;

/// When churn (drops and unsubscribes) stops: a second before the measured window ends (a
/// quarter of it when shorter), so that every resume is answered while the publishers still
/// send. What a `recovered:false` skipped is only explained by the next message of each
/// publisher; a resume answered after the publishers' last message would leave its skipped
/// copies counted as lost.
fn churn_end(win: Window) -> u64 {
    let margin = 1_000_000_000u64.min(win.end.saturating_sub(win.measure) / 4);
    win.end.saturating_sub(margin)
}

/// One thread's part of a pub/sub run.
pub struct Pubsub {
    p: Arc<Params>,
    common: Arc<Common>,
    roles: Vec<Role>,
    topic_json: Vec<String>,
    publishers: Vec<usize>,
    subscribers: Vec<usize>,
    books: Vec<TopicBooks>,
    counters: PubsubCounters,
    first_error: Option<String>,
    win: Option<Window>,
    next_churn: u64,
    churn_every: u64,
    next_unsub: u64,
    unsub_every: u64,
    /// Subscribers in [`SubState::Away`] and when each resumes.
    away: Vec<(usize, u64)>,
    answer_checked: bool,
    local_pubs_done: bool,
}

impl Pubsub {
    fn total_pubs(&self) -> usize {
        self.p.topics * self.p.publishers
    }

    fn ask(&mut self, io: &mut Io, c: usize) {
        let topic_json = match &self.roles[c] {
            Role::Sub { topic, .. } | Role::Pub { topic, .. } => &self.topic_json[*topic],
        };
        let req = match &mut self.roles[c] {
            Role::Sub {
                check,
                state,
                next_id,
                subscribed_at,
                ..
            } => {
                *next_id += 1;
                // Opened again after a churn drop: resume where it was.
                let resume = subscribed_at.is_some();
                *state = SubState::Asked;
                let since = if resume {
                    check.begin_resume(&mut self.counters)
                } else {
                    None
                };
                wire::subscribe(
                    topic_json,
                    *next_id,
                    since.as_ref().map(|(o, e)| (*o, e.as_str())),
                    self.p.presence,
                )
            }
            Role::Pub { .. } => wire::subscribe(topic_json, 1, None, false),
        };
        io.send(c, false, &req);
        // A request is not a data message of the run (the progress line counts those).
        io.sent_msgs = io.sent_msgs.saturating_sub(1);
    }

    fn publish(&mut self, io: &mut Io, win: Window) {
        let interval = 1_000_000_000u64.checked_div(self.p.rate).unwrap_or(0);
        let total = self.total_pubs().max(1) as u64;
        let mut all_done = true;
        for &c in &self.publishers {
            let open = io.conns[c].is_open();
            let Role::Pub {
                id,
                topic,
                template,
                api,
                subscribed,
                seq,
                acked,
                measured,
                first_measured,
                next_due,
                done,
            } = &mut self.roles[c]
            else {
                continue;
            };
            if *done {
                continue;
            }
            if io.now >= win.end || !open {
                *done = true;
                self.common.topic_sent[*topic].fetch_add(*measured, Ordering::Relaxed);
                let (first, n) = &self.common.ranges[*id];
                first.store(first_measured.unwrap_or(*seq), Ordering::Relaxed);
                n.store(*measured, Ordering::Relaxed);
                continue;
            }
            all_done = false;
            if !*subscribed {
                continue;
            }
            if *next_due == 0 {
                *next_due = (win.start + interval * *id as u64 / total).max(1);
            }
            for _ in 0..self.p.window.max(1) {
                if (interval > 0 && *next_due > io.now) || *seq >= *acked + self.p.window {
                    break;
                }
                let h = Header {
                    publisher: *id as u32,
                    seq: *seq,
                    sent_ns: io.now,
                };
                match api {
                    Some(api) => io.send_raw(c, api.with(h)),
                    None => io.send(c, false, template.with(h)),
                }
                if win.measured(io.now) {
                    first_measured.get_or_insert(*seq);
                    *measured += 1;
                    io.stats.sent += 1;
                }
                *seq += 1;
                *next_due += interval;
            }
        }
        if all_done && !self.local_pubs_done {
            self.local_pubs_done = true;
            let n = self.publishers.len();
            let before = self.common.pubs_done.fetch_add(n, Ordering::AcqRel);
            if before + n == self.total_pubs() && n > 0 {
                io.shared.wake_all();
            }
        }
    }

    fn churn(&mut self, io: &mut Io, win: Window) {
        if self.churn_every == 0 || self.subscribers.is_empty() {
            return;
        }
        if self.next_churn == 0 {
            self.next_churn = win.start + io.rng.next_u64() % self.churn_every;
        }
        while io.now >= self.next_churn && io.now < churn_end(win) {
            self.next_churn += self.churn_every;
            let pick =
                self.subscribers[(io.rng.next_u64() % self.subscribers.len() as u64) as usize];
            if let Role::Sub { state, .. } = &mut self.roles[pick]
                && *state == SubState::Live
                && io.conns[pick].is_open()
            {
                *state = SubState::Down;
                self.counters.churns += 1;
                io.reconnect(pick);
            }
        }
    }

    /// `--unsubscribe-churn`: a random live subscriber unsubscribes; it resumes on
    /// `unsubscribed` (see `on_message`).
    fn unsubscribe_churn(&mut self, io: &mut Io, win: Window) {
        if self.unsub_every == 0 || self.subscribers.is_empty() {
            return;
        }
        if self.next_unsub == 0 {
            self.next_unsub = win.start + io.rng.next_u64() % self.unsub_every;
        }
        while io.now >= self.next_unsub && io.now < churn_end(win) {
            self.next_unsub += self.unsub_every;
            let pick =
                self.subscribers[(io.rng.next_u64() % self.subscribers.len() as u64) as usize];
            if let Role::Sub {
                topic,
                state,
                next_id,
                ..
            } = &mut self.roles[pick]
                && *state == SubState::Live
                && io.conns[pick].is_open()
            {
                *state = SubState::Leaving;
                *next_id += 1;
                self.counters.unsubscribe_churns += 1;
                let req = wire::unsubscribe(&self.topic_json[*topic], *next_id);
                io.send(pick, false, &req);
                io.sent_msgs = io.sent_msgs.saturating_sub(1);
            }
        }
    }

    /// Resumes the subscribers whose pause after `unsubscribed` is over.
    fn resume_away(&mut self, io: &mut Io) {
        let mut i = 0;
        while i < self.away.len() {
            let (c, at) = self.away[i];
            if at > io.now {
                i += 1;
                continue;
            }
            self.away.swap_remove(i);
            if matches!(
                &self.roles[c],
                Role::Sub {
                    state: SubState::Away,
                    ..
                }
            ) && io.conns[c].is_open()
            {
                self.ask(io, c);
            }
        }
    }

    fn on_data(&mut self, io: &mut Io, c: usize, h: Header, offset: Option<u64>) {
        let pubs = self.p.publishers;
        match &mut self.roles[c] {
            Role::Pub { id, acked, .. } => {
                if h.publisher as usize == *id {
                    *acked = (*acked).max(h.seq + 1);
                }
            }
            Role::Sub {
                topic,
                check,
                unique,
                presence,
                ..
            } => {
                if self.p.presence {
                    presence.on_message(&mut self.counters);
                }
                let id = h.publisher as usize;
                if id / pubs.max(1) != *topic || id >= self.p.topics * pubs {
                    io.stats.foreign += 1;
                    return;
                }
                let seen = check.on_message(id % pubs, h.seq, offset, &mut self.counters);
                if self.p.history
                    && let Some(o) = offset
                {
                    self.books[*topic].record(
                        check.epoch(),
                        o,
                        h.publisher,
                        h.seq,
                        &mut self.counters,
                    );
                }
                let Some(win) = self.win else { return };
                if !win.measured(h.sent_ns) {
                    return;
                }
                match seen.ev {
                    SeqEvent::Fresh | SeqEvent::Reordered => {
                        *unique += 1;
                        io.stats.delivered += 1;
                        if !seen.replayed {
                            let same =
                                same_node(self.common.nodes.as_ref(), id, io.conns[c].target);
                            io.stats
                                .record_latency_on(io.now.saturating_sub(h.sent_ns), same);
                        }
                        if seen.ev == SeqEvent::Reordered {
                            io.stats.reordered += 1;
                        }
                    }
                    SeqEvent::Duplicate => io.stats.duplicates += 1,
                }
            }
        }
    }

    /// After the warm-up: if no connection of this thread got `subscribed` (none open: the
    /// server refused the subprotocol; open: it treats the token as something else, e.g. a
    /// room), the server does not speak JSON on this subprotocol; end the run for everyone.
    fn check_answered(&mut self, io: &mut Io, win: Window) {
        if self.answer_checked || io.now < win.measure {
            return;
        }
        self.answer_checked = true;
        let any_answer = self.roles.iter().any(|r| match r {
            Role::Sub { subscribed_at, .. } => subscribed_at.is_some(),
            Role::Pub { subscribed, .. } => *subscribed,
        });
        if !self.roles.is_empty() && !any_answer {
            self.common.unanswered.store(true, Ordering::Relaxed);
            io.shared.abort_all();
        }
    }
}

impl Scenario for Pubsub {
    fn on_open(&mut self, io: &mut Io, c: usize) {
        if let Role::Pub {
            api: Some(_),
            subscribed,
            ..
        } = &mut self.roles[c]
        {
            // An API publisher subscribes to nothing: it may publish at once.
            *subscribed = true;
            return;
        }
        self.ask(io, c);
    }

    fn on_bytes(&mut self, io: &mut Io, c: usize, bytes: &[u8]) -> usize {
        let a = api::answers(bytes);
        if let Role::Pub { acked, .. } = &mut self.roles[c] {
            // Each answer is one publish done: the credit of an API publisher.
            *acked += a.ok + a.failed;
        }
        io.recv_msgs += a.ok + a.failed;
        self.counters.server_errors += a.failed;
        if self.first_error.is_none() {
            self.first_error = a.first_failure;
        }
        // A publisher its window blocked goes on in this loop turn's `on_turn`.
        a.used
    }

    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, data: &[u8]) {
        if let Some((h, offset)) = (!binary).then(|| wire::fast_message(data)).flatten() {
            match h {
                Some(h) => self.on_data(io, c, h, offset),
                None => io.stats.foreign += 1,
            }
            return;
        }
        let Some(m) = (!binary).then(|| wire::parse(data)).flatten() else {
            io.stats.foreign += 1;
            return;
        };
        match m.op.as_ref() {
            "message" => match m.data.and_then(wire::header) {
                Some(h) => self.on_data(io, c, h, m.offset),
                None => io.stats.foreign += 1,
            },
            "subscribed" => match &mut self.roles[c] {
                Role::Pub { subscribed, .. } => {
                    if !*subscribed {
                        self.counters.subscribed += 1;
                    }
                    *subscribed = true;
                }
                Role::Sub {
                    check,
                    state,
                    next_id,
                    subscribed_at,
                    presence,
                    ..
                } => {
                    if *state != SubState::Asked || m.id != Some(*next_id) {
                        return;
                    }
                    *state = SubState::Live;
                    if self.p.presence {
                        presence.on_subscribed();
                    }
                    check.on_subscribed(
                        m.offset,
                        m.epoch.as_deref(),
                        m.recovered,
                        &mut self.counters,
                    );
                    if subscribed_at.is_none() {
                        *subscribed_at = Some(io.now);
                        self.counters.subscribed += 1;
                    }
                }
            },
            "unsubscribed" => {
                if let Role::Sub { state, next_id, .. } = &self.roles[c]
                    && *state == SubState::Leaving
                    && m.id == Some(*next_id)
                {
                    if self.p.unsubscribe_pause == 0 {
                        self.ask(io, c);
                    } else {
                        if let Role::Sub { state, .. } = &mut self.roles[c] {
                            *state = SubState::Away;
                        }
                        self.away.push((c, io.now + self.p.unsubscribe_pause));
                    }
                }
            }
            "presence" | "join" | "leave" => {
                if let Role::Sub { presence, .. } = &mut self.roles[c]
                    && self.p.presence
                {
                    match m.op.as_ref() {
                        "presence" => presence.on_snapshot(
                            m.clients
                                .map(|l| l.into_iter().map(|m| m.client.into_owned()).collect()),
                            &mut self.counters,
                        ),
                        op => presence.on_event(
                            op == "join",
                            m.client.as_deref().unwrap_or(""),
                            &mut self.counters,
                        ),
                    }
                }
            }
            "error" => {
                self.counters.server_errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!(
                        "{}: {}",
                        m.code.as_deref().unwrap_or("?"),
                        String::from_utf8_lossy(data)
                    ));
                }
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, _io: &mut Io, c: usize, code: Option<u16>) {
        if let Role::Sub {
            closed_by_server,
            state,
            presence,
            ..
        } = &mut self.roles[c]
        {
            *closed_by_server = code.is_some();
            *state = SubState::Down;
            presence.reset();
        }
    }

    fn on_turn(&mut self, io: &mut Io) {
        let win = *self.win.get_or_insert_with(|| Window::load(&io.shared));
        self.check_answered(io, win);
        self.churn(io, win);
        self.unsubscribe_churn(io, win);
        self.resume_away(io);
        self.publish(io, win);
    }

    fn deadline(&self, io: &Io) -> Option<u64> {
        let win = self.win?;
        if io.now >= win.end {
            return Some(win.grace_end);
        }
        let mut next = win.end;
        if !self.answer_checked {
            next = next.min(win.measure);
        }
        if self.churn_every > 0 && self.next_churn > 0 {
            next = next.min(self.next_churn);
        }
        if self.unsub_every > 0 && self.next_unsub > 0 {
            next = next.min(self.next_unsub);
        }
        if let Some(at) = self.away.iter().map(|a| a.1).min() {
            next = next.min(at);
        }
        if self.p.rate > 0 {
            for &c in &self.publishers {
                // One blocked by its window is woken by its own copy coming back, not by time.
                if let Role::Pub {
                    next_due,
                    done: false,
                    subscribed: true,
                    seq,
                    acked,
                    ..
                } = &self.roles[c]
                    && *seq < *acked + self.p.window
                {
                    next = next.min(*next_due);
                }
            }
        }
        Some(next)
    }

    fn finished(&mut self, io: &mut Io) -> bool {
        let Some(win) = self.win else { return false };
        let total_pubs = self.total_pubs();
        tally::tally(
            &self.p,
            &self.common,
            &mut self.roles,
            &mut self.counters,
            io,
            win,
            total_pubs,
        )
    }
}
