//! The scenarios of the comparison ([`all`]): which loads, servers and sizes each row runs.

pub use super::scenario::{API_KEY, Load, Rate, Scenario, TEXT_SIZE};

/// The JSON pub/sub scenarios' baseline: ringcast's own room mode at the same load.
pub const PUBSUB_BASELINE: &str = "fanout";
/// `--history-size` of the history-on pub/sub scenario.
pub const HISTORY_SIZE: u32 = 100;

/// Channels of the `api` scenarios (full form, quick form), 10 subscribers and 1 publisher
/// each: issue 23's "one channel per publish, 10 subscribers each".
const API_TOPICS: usize = 100;
const API_TOPICS_QUICK: usize = 20;
/// Subscribers per channel of the `api` scenarios.
const API_SUBSCRIBERS: usize = 10;

/// Payload bytes of the chat-like fan-out scenarios, with and without permessage-deflate.
pub const CHAT_SIZE: usize = 1000;
/// Payload bytes of the rounds scenarios (binary).
pub const ROUND_SIZE: usize = 20;
/// Fixed rate of every member in the many-rooms scenario, messages per second.
pub const ROOM_MEMBER_RATE: u64 = 2;
/// Subscribers per room of the cluster scenario.
pub const CLUSTER_SUBSCRIBERS: usize = 30;
/// Rooms of the cluster scenario (full form, quick form).
const CLUSTER_ROOMS: usize = 100;
const CLUSTER_ROOMS_QUICK: usize = 20;
/// Messages per second of each room's publisher in the cluster scenario (full, quick).
const CLUSTER_RATE: u64 = 50;
const CLUSTER_RATE_QUICK: u64 = 100;

/// The scenario list, full or `--quick`.
pub fn all(quick: bool) -> Vec<Scenario> {
    let (dur, warm, grace) = if quick {
        (2.0, 0.5, 1.0)
    } else {
        (5.0, 1.0, 2.0)
    };
    let subs = if quick { 200 } else { 1000 };
    let rooms = if quick { 100 } else { 1000 };
    let idle = if quick { 2000 } else { 10_000 };
    let (r1, r2) = if quick { (50, 100) } else { (100, 500) };
    let sc = |key: &str, letter, title: String, load, echo| Scenario {
        key: key.to_owned(),
        letter,
        title,
        load,
        echo,
        duration_s: dur,
        warmup_s: warm,
        grace_s: grace,
        server_args: Vec::new(),
        baseline: None,
        cluster: false,
        text_size: TEXT_SIZE,
        loadtest_flags: Vec::new(),
        tls: false,
        pusher: false,
    };
    // One room, one publisher at max rate: (a) and its chat-sized twins (a').
    let fanout = Load::Broadcast {
        rooms: 1,
        subscribers: subs,
        publishers: 1,
        rate: Rate::Max,
        check_publishers: false,
    };
    let mut v = vec![
        sc(
            "fanout",
            "(a)",
            format!(
                "fan-out: 1 room × {subs} subscribers, 1 publisher, {TEXT_SIZE} B text, max rate"
            ),
            fanout.clone(),
            false,
        ),
        sc(
            "rooms",
            "(b)",
            format!(
                "many rooms: {rooms} rooms × 10 members, every member publishes {ROOM_MEMBER_RATE} msg/s \
                 ({} msgs/s sent, {} deliveries/s expected), {TEXT_SIZE} B text",
                rooms as u64 * 10 * ROOM_MEMBER_RATE,
                rooms as u64 * 90 * ROOM_MEMBER_RATE
            ),
            Load::Broadcast {
                rooms,
                subscribers: 0,
                publishers: 10,
                rate: Rate::Fixed(ROOM_MEMBER_RATE),
                check_publishers: true,
            },
            false,
        ),
        sc(
            "latency",
            "(c)",
            format!(
                "latency: scenario (a) at a fixed rate of half the peer's max rate in (a), \
                 1 room × {subs} subscribers"
            ),
            Load::Broadcast {
                rooms: 1,
                subscribers: subs,
                publishers: 1,
                rate: Rate::HalfPeerFanout,
                check_publishers: false,
            },
            false,
        ),
        sc(
            "connect",
            "(d)",
            format!(
                "connections: {idle} idle connections, setup rate and server RSS per connection"
            ),
            Load::Connect { connections: idle },
            false,
        ),
    ];
    // permessage-deflate (docs/compression.md): 1 KB chat-like JSON, plain, then offered by
    // every client (the peer declines it); the compressed row divides by ringcast's own plain one.
    for deflate in [false, true] {
        let mut f = sc(
            if deflate {
                "fanout-deflate"
            } else {
                "fanout-1k"
            },
            "(a')",
            format!(
                "fan-out of chat: 1 room × {subs} subscribers, 1 publisher, {CHAT_SIZE} B chat-like \
                 JSON (`--filler chat`), max rate{}",
                if deflate {
                    ", every client offers permessage-deflate (`--compression`; the tokio peer \
                     declines it); ratios against the same server's `fanout-1k`"
                } else {
                    ""
                }
            ),
            fanout.clone(),
            false,
        );
        f.text_size = CHAT_SIZE;
        f.loadtest_flags = vec!["--filler".into(), "chat".into()];
        if deflate {
            f.loadtest_flags.push("--compression".into());
            f.baseline = Some("fanout-1k");
        }
        v.push(f);
    }
    for n in [r1, r2] {
        v.push(sc(
            &format!("rounds{n}"),
            "(e)",
            format!(
                "all-to-all rounds: {n} clients in one room, server --echo, one {ROUND_SIZE} B binary \
                 message per client per round"
            ),
            Load::Rounds {
                clients: n,
                size: ROUND_SIZE,
            },
            true,
        ));
    }
    // All-to-all with chat-sized messages, plain then with permessage-deflate (issue 25): the
    // first (e) with 1 KB chat-like JSON, so every echo is worth compressing.
    for deflate in [false, true] {
        let mut r = sc(
            if deflate {
                "rounds-deflate"
            } else {
                "rounds-1k"
            },
            "(e')",
            format!(
                "all-to-all rounds of chat: {r1} clients in one room, server --echo, one \
                 {CHAT_SIZE} B chat-like message (`--filler chat`) per client per round{}",
                if deflate {
                    ", every client offers permessage-deflate (`--compression`; the tokio peer \
                     declines it); ratios against the same server's `rounds-1k`"
                } else {
                    ""
                }
            ),
            Load::Rounds {
                clients: r1,
                size: CHAT_SIZE,
            },
            true,
        );
        r.loadtest_flags = vec!["--filler".into(), "chat".into()];
        if deflate {
            r.loadtest_flags.push("--compression".into());
            r.baseline = Some("rounds-1k");
        }
        v.push(r);
    }
    for history in [false, true] {
        let mut p = sc(
            if history { "pubsub-hist" } else { "pubsub" },
            "(f)",
            format!(
                "JSON pub/sub: 1 topic × {subs} subscribers, 1 publisher, {TEXT_SIZE} B data, max \
                 rate, history {}; ringcast only (the tokio peer has no JSON mode): ratios are \
                 against the same server's room mode, (a) `{PUBSUB_BASELINE}`",
                if history {
                    format!("on (`--history-size {HISTORY_SIZE}`, offsets and order checked)")
                } else {
                    "off".to_owned()
                }
            ),
            Load::Pubsub {
                topics: 1,
                subscribers: subs,
                history,
                api: false,
            },
            false,
        );
        if history {
            p.server_args = vec!["--history-size".into(), HISTORY_SIZE.to_string()];
        }
        p.baseline = Some(PUBSUB_BASELINE);
        v.push(p);
    }
    // The Pusher dialect (docs/pusher.md): (a) with client events on one private channel.
    let mut p = sc(
        "pusher",
        "(j)",
        format!(
            "Pusher dialect: 1 private channel × {subs} subscribers, 1 publisher sending client \
             events (`loadtest pusher`), {TEXT_SIZE} B data, max rate; ringcast only (the tokio \
             peer has no Pusher dialect): ratios are against the same server's room mode, (a) \
             `{PUBSUB_BASELINE}` (issue 24's goal: ≥ 0.8)"
        ),
        fanout.clone(),
        false,
    );
    p.pusher = true;
    p.baseline = Some(PUBSUB_BASELINE);
    v.push(p);
    let api_topics = if quick { API_TOPICS_QUICK } else { API_TOPICS };
    for api in [false, true] {
        let (key, how) = if api {
            (
                "api",
                "through the server API (plain HTTP/1.1 keep-alive, POST /api/publish pipelined); \
                 ratios are against the same load published over WebSocket, `api-ws`",
            )
        } else {
            (
                "api-ws",
                "over WebSocket (the baseline of `api`); ratios are against room mode, (a) \
                 `fanout`",
            )
        };
        let mut p = sc(
            key,
            "(h)",
            format!(
                "server API load: {api_topics} channels × {API_SUBSCRIBERS} subscribers, 1 \
                 publisher per channel, {TEXT_SIZE} B data, max rate, published {how}; ringcast only"
            ),
            Load::Pubsub {
                topics: api_topics,
                subscribers: API_SUBSCRIBERS,
                history: false,
                api,
            },
            false,
        );
        p.server_args = vec!["--api-key".into(), API_KEY.into()];
        p.baseline = Some(if api { "api-ws" } else { PUBSUB_BASELINE });
        v.push(p);
    }
    let (c_rooms, c_rate) = if quick {
        (CLUSTER_ROOMS_QUICK, CLUSTER_RATE_QUICK)
    } else {
        (CLUSTER_ROOMS, CLUSTER_RATE)
    };
    let mut c = sc(
        "cluster",
        "(g)",
        format!(
            "cluster: {c_rooms} rooms × {CLUSTER_SUBSCRIBERS} subscribers + 1 publisher, members \
             spread round-robin over the nodes, {} msgs/s sent in total ({} deliveries/s), \
             {TEXT_SIZE} B text; 3 nodes × `--workers 1` + redis-server vs 1 node × `--workers 2`",
            c_rooms as u64 * c_rate,
            c_rooms as u64 * c_rate * CLUSTER_SUBSCRIBERS as u64
        ),
        Load::Broadcast {
            rooms: c_rooms,
            subscribers: CLUSTER_SUBSCRIBERS,
            publishers: 1,
            rate: Rate::Fixed(c_rate),
            check_publishers: false,
        },
        false,
    );
    c.cluster = true;
    // A node's link to Redis comes up after its listening line, and a room's SUBSCRIBE is
    // sent when its first local member joins: a warm-up of at least 1 s lets both settle
    // before copies are counted.
    c.warmup_s = c.warmup_s.max(1.0);
    v.push(c);
    // Holding idle connections needs no long measurement.
    if let Some(c) = v.iter_mut().find(|s| s.key == "connect") {
        c.duration_s = if quick { 0.5 } else { 1.0 };
        c.warmup_s = 0.0;
        c.grace_s = 0.0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn lists() {
        for quick in [false, true] {
            let v = all(quick);
            assert_eq!(v.len(), 16);
            let url = ["ws://x:1/".to_owned()];
            // Both chat-sized deflate rows offer compression with 1 KB messages.
            for key in ["fanout-deflate", "rounds-deflate"] {
                let z = v.iter().find(|s| s.key == key).expect(key);
                let a = z.loadtest_args(&url, 0, Path::new("/tmp/j"), None, None);
                assert!(a.iter().any(|x| x == "--compression"), "{key}");
                assert!(
                    a.windows(2).any(|w| w[0] == "--size" && w[1] == "1000"),
                    "{key}"
                );
            }
            let r = v
                .iter()
                .find(|s| s.key == "rounds-deflate")
                .expect("rounds");
            assert_eq!(r.baseline, Some("rounds-1k"));
            let api = v.iter().find(|s| s.key == "api").expect("api");
            assert_eq!(api.baseline, Some("api-ws"));
            let a = api.loadtest_args(&url, 0, Path::new("/tmp/j"), None, None);
            assert!(a.windows(3).any(|w| w[0] == "api" && w[1] == "--api-key"));
            let ps = v
                .iter()
                .find(|s| s.key == "pubsub-hist")
                .expect("pubsub-hist");
            assert_eq!(ps.server_args, ["--history-size", "100"]);
            assert_eq!(ps.baseline, Some("fanout"));
            let a = ps.loadtest_args(&url, 0, Path::new("/tmp/j"), None, None);
            assert!(a.iter().any(|x| x == "--history"));
            assert!(a.windows(2).any(|w| w[0] == "--size" && w[1] == "64"));
            let a = v[2].loadtest_args(&url, 77, Path::new("/tmp/j"), None, None);
            assert!(a.windows(2).any(|w| w[0] == "--rate" && w[1] == "77"));
            let d = v[3].loadtest_args(&url, 0, Path::new("/tmp/j"), Some(9), Some(2));
            assert!(d.windows(2).any(|w| w[0] == "--server-pid" && w[1] == "9"));
            let px = v.iter().find(|s| s.key == "pusher").expect("pusher");
            assert!(px.ringcast_only() && px.baseline == Some("fanout"));
            let a = px.loadtest_args(&url, 0, Path::new("/tmp/j"), None, None);
            assert!(a.windows(2).any(|w| w[0] == "pusher" && w[1] == "--rooms"));
            assert!(
                a.windows(2)
                    .any(|w| w[0] == "--app-key" && w[1] == "app-key")
            );
            let c = v.iter().find(|s| s.cluster).expect("cluster scenario");
            let nodes = ["ws://a:1/".to_owned(), "ws://b:2/".to_owned()];
            let a = c.loadtest_args(&nodes, 5, Path::new("/tmp/j"), None, None);
            let given: Vec<&String> = a
                .windows(2)
                .filter(|w| w[0] == "--url")
                .map(|w| &w[1])
                .collect();
            assert_eq!(given, [&nodes[0], &nodes[1]]);
        }
    }
}
