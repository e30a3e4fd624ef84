//! Which connection does what: topic by topic, S subscribers then P publishers, handed to the
//! threads round-robin (so `--url` spreads every topic over the nodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use super::check::{OrderBook, PubsubCounters, SubscriberCheck};
use super::wire::{self, PublishTemplate};
use super::{Common, Params, Pubsub, Role, SubState};
use crate::scenario::{Plan, thread_of};

/// Per-thread connection lists and scenario instances.
pub fn plan(p: Params, threads: usize) -> Plan<Pubsub> {
    let p = Arc::new(p);
    let common = Arc::new(Common {
        topic_sent: (0..p.topics).map(|_| AtomicU64::new(0)).collect(),
        pubs_done: AtomicUsize::new(0),
        unanswered: AtomicBool::new(false),
    });
    let topic_json: Vec<String> = (0..p.topics)
        .map(|i| wire::quote(&format!("{}{i}", p.prefix)))
        .collect();
    let churn_every = if p.churn > 0.0 {
        (threads as f64 * 1e9 / p.churn).max(1.0) as u64
    } else {
        0
    };
    let mut out: Plan<Pubsub> = (0..threads)
        .map(|_| {
            (
                Vec::new(),
                Pubsub {
                    p: p.clone(),
                    common: common.clone(),
                    roles: Vec::new(),
                    topic_json: topic_json.clone(),
                    publishers: Vec::new(),
                    subscribers: Vec::new(),
                    books: vec![OrderBook::default(); p.topics],
                    counters: PubsubCounters::default(),
                    first_error: None,
                    win: None,
                    next_churn: 0,
                    churn_every,
                    answer_checked: false,
                    local_pubs_done: false,
                },
            )
        })
        .collect();
    let mut n = 0;
    for (topic, name) in topic_json.iter().enumerate() {
        for k in 0..p.subscribers + p.publishers {
            let (protos, sc) = &mut out[thread_of(n, threads)];
            n += 1;
            protos.push(Some(p.protocol.clone()));
            let c = sc.roles.len();
            if k < p.subscribers {
                sc.subscribers.push(c);
                sc.roles.push(Role::Sub {
                    topic,
                    check: SubscriberCheck::new(p.publishers, p.history),
                    state: SubState::Down,
                    next_id: 1,
                    subscribed_at: None,
                    unique: 0,
                    closed_by_server: false,
                });
            } else {
                sc.publishers.push(c);
                sc.roles.push(Role::Pub {
                    id: topic * p.publishers + (k - p.subscribers),
                    topic,
                    template: PublishTemplate::new(name, p.size),
                    subscribed: false,
                    seq: 0,
                    acked: 0,
                    measured: 0,
                    next_due: 0,
                    done: false,
                });
            }
        }
    }
    out
}
