//! Which connection does what: room by room, S subscribers then P publishers, handed to the
//! threads round-robin (so `--url` spreads every room over the nodes), and for each publisher
//! the subscriber whose receipts are its flow control.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::{Broadcast, BroadcastShared, Inbox, Params, Role};
use crate::payload;
use crate::scenario::thread_of;
use crate::stats::SeqTrack;
use crate::target::PublisherNodes;

/// Per-thread connection lists (subprotocol per connection) and scenario instances.
pub fn plan(p: Params, threads: usize) -> Vec<(Vec<Option<String>>, Broadcast)> {
    let p = Arc::new(p);
    let total_pubs = p.rooms * p.publishers;
    let mut protos: Vec<Vec<Option<String>>> = vec![Vec::new(); threads];
    let mut roles: Vec<Vec<Role>> = (0..threads).map(|_| Vec::new()).collect();
    let mut pub_thread = vec![0; total_pubs];
    let mut pub_place = vec![(0, 0); total_pubs];
    // (thread, local index) of the first subscriber of each room on each thread.
    let mut first_sub: Vec<Vec<Option<usize>>> = vec![vec![None; threads]; p.rooms];
    let mut sub_counter = 0;
    for (room, firsts) in first_sub.iter_mut().enumerate() {
        // The Pusher dialect names its channel in a message, not in the upgrade.
        let name = p.pusher.is_none().then(|| format!("{}{room}", p.prefix));
        for _ in 0..p.subscribers {
            let t = thread_of(sub_counter, threads);
            sub_counter += 1;
            if firsts[t].is_none() {
                firsts[t] = Some(roles[t].len());
            }
            protos[t].push(name.clone());
            roles[t].push(Role::Subscriber {
                room,
                tracks: vec![SeqTrack::default(); p.publishers],
                unique: 0,
                acks_for: Vec::new(),
                joined: false,
                closed_by_server: false,
            });
        }
        for k in 0..p.publishers {
            let id = room * p.publishers + k;
            let t = thread_of(id, threads);
            pub_thread[id] = t;
            pub_place[id] = (t, roles[t].len());
            protos[t].push(name.clone());
            roles[t].push(Role::Publisher {
                id,
                seq: 0,
                measured: 0,
                next_due: 0,
                done: false,
                inbox: p.check_publishers.then(|| Inbox {
                    tracks: vec![SeqTrack::default(); p.publishers],
                    ..Inbox::default()
                }),
            });
        }
    }
    let acked: Vec<AtomicU64> = (0..total_pubs).map(|_| AtomicU64::new(0)).collect();
    // Designate a receiver per publisher: same thread if the room has a subscriber there.
    for id in 0..total_pubs {
        let room = id / p.publishers;
        let t = pub_thread[id];
        let choice = first_sub[room][t]
            .map(|c| (t, c))
            .or_else(|| (0..threads).find_map(|u| first_sub[room][u].map(|c| (u, c))));
        match choice {
            Some((u, c)) => {
                if let Role::Subscriber { acks_for, .. } = &mut roles[u][c] {
                    acks_for.push(id);
                }
            }
            None => acked[id].store(u64::MAX / 2, Ordering::Relaxed),
        }
    }
    let shared = Arc::new(BroadcastShared {
        acked,
        waiting: (0..total_pubs).map(|_| AtomicBool::new(false)).collect(),
        pub_thread,
        nodes: PublisherNodes::new(&pub_place, threads, p.servers),
        room_sent: (0..p.rooms).map(|_| AtomicU64::new(0)).collect(),
        pubs_done: AtomicUsize::new(0),
    });
    protos
        .into_iter()
        .zip(roles)
        .map(|(protos, roles)| {
            let publishers = roles
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r, Role::Publisher { .. }))
                .map(|(i, _)| i)
                .collect();
            let n = roles.len();
            let sc = Broadcast {
                p: p.clone(),
                shared: shared.clone(),
                roles,
                publishers,
                buf: payload::template(p.size),
                win: None,
                local_pubs_done: false,
                ready: vec![false; n],
                wrapped: Vec::new(),
            };
            (protos, sc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::assert_matches_driver;

    fn params(servers: usize) -> Params {
        Params {
            rooms: 3,
            subscribers: 4,
            publishers: 2,
            size: 64,
            rate: 10,
            window: 8,
            binary: false,
            prefix: "r".into(),
            check_publishers: false,
            servers,
            pusher: None,
        }
    }

    #[test]
    fn publisher_nodes_match_the_connections_the_driver_opens() {
        assert!(plan(params(1), 2)[0].1.shared.nodes.is_none());
        let (threads, servers) = (2, 3);
        let out = plan(params(servers), threads);
        let nodes = out[0].1.shared.nodes.clone().expect("3 servers");
        let mut pubs = Vec::new();
        for (t, (_, sc)) in out.iter().enumerate() {
            for (c, role) in sc.roles.iter().enumerate() {
                if let Role::Publisher { id, .. } = role {
                    pubs.push((t, c, *id));
                }
            }
        }
        assert_eq!(assert_matches_driver(&nodes, &pubs, threads, servers), 6);
    }
}
