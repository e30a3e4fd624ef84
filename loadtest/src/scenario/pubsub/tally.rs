//! The run's cross-thread tally ([`Common`]) and what each thread adds to it once its part
//! is over ([`tally`]): the loss per subscriber, split by receiving server.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::Params;
use super::check::PubsubCounters;
use super::role::Role;
use crate::conn::Io;
use crate::shared::Window;
use crate::target::{PublisherNodes, same_node};

/// Cross-thread state of one run.
#[derive(Debug)]
pub(super) struct Common {
    /// Per topic: measured messages sent (final once every publisher is done).
    pub(super) topic_sent: Vec<AtomicU64>,
    pub(super) pubs_done: AtomicUsize,
    /// Some thread found no connection answered `subscribe`: no JSON mode on that subprotocol.
    pub(super) unanswered: AtomicBool,
    /// Per publisher: its server, when there are several.
    pub(super) nodes: Option<PublisherNodes>,
    /// Per publisher: the sequence of its first measured message and how many it measured
    /// (final once it is done).
    pub(super) ranges: Vec<(AtomicU64, AtomicU64)>,
    /// Per receiving server: loss, summed by the threads as they finish.
    pub(super) loss: Mutex<Vec<NodeLossAcc>>,
}

/// [`super::summary::NodeLoss`] while the threads add to it: the distinct messages as a set.
#[derive(Debug, Default)]
pub(super) struct NodeLossAcc {
    pub(super) same: u64,
    pub(super) cross: u64,
    pub(super) distinct: HashSet<(u32, u64)>,
}

/// Once `win` and its grace are over (or every subscriber has what it expects after the
/// publishers finished), closes this thread's checks, adds its loss to `io.stats` and its
/// per-server loss to `common`; false while the thread must go on.
pub(super) fn tally(
    p: &Params,
    common: &Common,
    roles: &mut [Role],
    counters: &mut PubsubCounters,
    io: &mut Io,
    win: Window,
    total_pubs: usize,
) -> bool {
    if io.now < win.end && !io.shared.is_aborted() {
        return false;
    }
    let all_pubs = common.pubs_done.load(Ordering::Acquire) == total_pubs;
    let timed_out = io.now >= win.grace_end || io.shared.is_aborted();
    if !all_pubs && !timed_out {
        return false;
    }
    let sent: Vec<u64> = common
        .topic_sent
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    // Subscribers that were subscribed before the measured window expect all of it.
    let expect = |r: &Role| match r {
        Role::Sub {
            topic,
            subscribed_at: Some(at),
            ..
        } if *at < win.measure => Some(sent[*topic]),
        _ => None,
    };
    let complete = all_pubs
        && roles.iter().enumerate().all(|(c, r)| match (r, expect(r)) {
            (Role::Sub { unique, check, .. }, Some(e)) => {
                !io.conns[c].is_open() || *unique + check.excused() >= e
            }
            _ => true,
        });
    if !complete && !timed_out {
        return false;
    }
    let mut loss: Vec<NodeLossAcc> = (0..p.servers.max(1))
        .map(|_| NodeLossAcc::default())
        .collect();
    let pubs = p.publishers;
    for (c, r) in roles.iter_mut().enumerate() {
        let expected = expect(r);
        let Role::Sub {
            topic,
            check,
            unique,
            closed_by_server,
            subscribed_at,
            presence,
            ..
        } = r
        else {
            continue;
        };
        check.close_resume(counters);
        presence.close(counters);
        if expected.is_some() && !*closed_by_server {
            let node = io.conns[c].target;
            let acc = &mut loss[node.min(p.servers.max(1) - 1)];
            for k in 0..pubs {
                let id = *topic * pubs + k;
                let (first, n) = &common.ranges[id];
                let lo = first.load(Ordering::Relaxed);
                let hi = lo + n.load(Ordering::Relaxed);
                let missing = check.missing_in(k, lo, hi);
                if same_node(common.nodes.as_ref(), id, node).unwrap_or(true) {
                    acc.same += missing.len() as u64;
                } else {
                    acc.cross += missing.len() as u64;
                    acc.distinct.extend(missing.iter().map(|&s| (id as u32, s)));
                }
            }
        }
        let Some(expected) = expected else {
            if subscribed_at.is_some() {
                counters.late_subscribers += 1;
            }
            continue;
        };
        io.stats.expected += expected;
        // Copies a `recovered:false` resume skipped are explained, counted apart.
        let missing = expected.saturating_sub(*unique + check.excused());
        if *closed_by_server {
            io.stats.lost_closed += missing;
        } else {
            io.stats.lost += missing;
        }
    }
    if let Ok(mut all) = common.loss.lock() {
        if all.is_empty() {
            all.extend((0..loss.len()).map(|_| NodeLossAcc::default()));
        }
        for (a, l) in all.iter_mut().zip(loss) {
            a.same += l.same;
            a.cross += l.cross;
            a.distinct.extend(l.distinct);
        }
    }
    true
}
