//! Which connection does what: topic by topic, S subscribers then P publishers, handed to the
//! threads round-robin (so `--url` spreads every topic over the nodes).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use super::book::TopicBooks;
use super::check::{PubsubCounters, SubscriberCheck};
use super::presence_view::PresenceView;
use super::role::{Role, SubState};
use super::tally::Common;
use super::wire::{self, PublishTemplate};
use super::{Params, Pubsub};
use crate::scenario::{Plan, thread_of};
use crate::target::PublisherNodes;

/// Per-thread connection lists and scenario instances.
pub fn plan(p: Params, threads: usize) -> Plan<Pubsub> {
    let p = Arc::new(p);
    // Connection n (topic by topic, S subscribers then P publishers) is the (n / threads)-th of
    // thread n % threads: the loop below hands them out in that order.
    let per_topic = p.subscribers + p.publishers;
    let places: Vec<(usize, usize)> = (0..p.topics * p.publishers)
        .map(|id| {
            let n = (id / p.publishers) * per_topic + p.subscribers + id % p.publishers;
            (thread_of(n, threads), n / threads)
        })
        .collect();
    let common = Arc::new(Common {
        topic_sent: (0..p.topics).map(|_| AtomicU64::new(0)).collect(),
        pubs_done: AtomicUsize::new(0),
        unanswered: AtomicBool::new(false),
        nodes: PublisherNodes::new(&places, threads, p.servers),
        ranges: (0..p.topics * p.publishers)
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect(),
        loss: Mutex::new(Vec::new()),
    });
    let topic_json: Vec<String> = (0..p.topics)
        .map(|i| wire::quote(&format!("{}{i}", p.prefix)))
        .collect();
    let churn_every = if p.churn > 0.0 {
        (threads as f64 * 1e9 / p.churn).max(1.0) as u64
    } else {
        0
    };
    let unsub_every = if p.unsubscribe_churn > 0.0 {
        (threads as f64 * 1e9 / p.unsubscribe_churn).max(1.0) as u64
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
                    books: vec![TopicBooks::default(); p.topics],
                    counters: PubsubCounters::default(),
                    first_error: None,
                    win: None,
                    next_churn: 0,
                    churn_every,
                    next_unsub: 0,
                    unsub_every,
                    away: Vec::new(),
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
            let c = sc.roles.len();
            let api = (k >= p.subscribers)
                .then_some(p.api_key.as_deref())
                .flatten()
                .map(|key| super::api::ApiTemplate::new(name, p.size, key));
            protos.push(Some(match api {
                Some(_) => crate::conn::PLAIN_HTTP.to_owned(),
                None => p.protocol.clone(),
            }));
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
                    presence: PresenceView::default(),
                });
            } else {
                sc.publishers.push(c);
                sc.roles.push(Role::Pub {
                    id: topic * p.publishers + (k - p.subscribers),
                    topic,
                    template: PublishTemplate::new(name, p.size),
                    api,
                    subscribed: false,
                    seq: 0,
                    acked: 0,
                    measured: 0,
                    first_measured: None,
                    next_due: 0,
                    done: false,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::assert_matches_driver;

    #[test]
    fn publisher_nodes_match_the_connections_the_driver_opens() {
        let params = |servers| Params {
            topics: 3,
            subscribers: 4,
            publishers: 2,
            size: 100,
            rate: 10,
            window: 8,
            history: false,
            churn: 0.0,
            unsubscribe_churn: 0.0,
            unsubscribe_pause: 0,
            presence: false,
            protocol: "pubsub".into(),
            prefix: "t".into(),
            api_key: None,
            servers,
        };
        assert!(plan(params(1), 2)[0].1.common.nodes.is_none());
        let (threads, servers) = (2, 3);
        let out = plan(params(servers), threads);
        let nodes = out[0].1.common.nodes.clone().expect("3 servers");
        let mut pubs = Vec::new();
        for (t, (_, sc)) in out.iter().enumerate() {
            for (c, role) in sc.roles.iter().enumerate() {
                if let Role::Pub { id, .. } = role {
                    pubs.push((t, c, *id));
                }
            }
        }
        assert_eq!(assert_matches_driver(&nodes, &pubs, threads, servers), 6);
    }
}
