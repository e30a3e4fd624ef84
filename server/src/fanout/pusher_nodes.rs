//! The clock of the Pusher channel state across a cluster (docs/pusher.md#across-a-cluster,
//! `crate::pusher::liveness`): one thread per node with Pusher apps in a cluster,
//! `ringcast-pusher-nodes`, that
//!
//! * asks the other nodes for their state again 0.3, 1.3 and 4.3 s after the start (the bus
//!   takes the state room's SUBSCRIBE and the ask's PUBLISH through different queues, so the
//!   first answers may come before this node hears the room);
//! * every `liveness::BEAT_EVERY`, notes whether this node's Redis link can be trusted and
//!   says this node is alive (`Registry::beat`);
//! * then forgets the nodes silent for `liveness::SILENT_FOR` (`Registry::expire`) and does
//!   what they would have done had they closed their connections: a
//!   `pusher_internal:member_removed` to this node's subscribers for each user present
//!   nowhere now (delivered here only, as if it came from the bus: every survivor tells its
//!   own clients), and, on the one survivor with the smallest id, the `member_removed` and
//!   `channel_vacated` webhooks.
//!
//! Off the workers and the bus thread: a beat or an expiry never waits behind either.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_pusher::webhook::Event;
use ringcast_pusher::{app, write};

use crate::pusher::liveness::BEAT_EVERY;
use crate::pusher::registry::Departed;
use crate::shared::Shared;

/// Delivers a text message to this node's members of a topic (`bus::Inbound::inject`).
pub type Inject = Box<dyn Fn(&str, &[u8]) + Send>;

/// When, after the start, this node asks again for the others' state.
const RESYNCS: [Duration; 3] = [
    Duration::from_millis(300),
    Duration::from_millis(1_300),
    Duration::from_millis(4_300),
];

/// Starts the thread (a node with Pusher apps in a cluster); it lives as long as the process.
pub fn start(shared: Arc<Shared>, inject: Inject) {
    let spawned = std::thread::Builder::new()
        .name("ringcast-pusher-nodes".into())
        .spawn(move || run(&shared, &inject));
    if let Err(e) = spawned {
        tracing::warn!("Pusher cluster state: no thread for resyncs and liveness: {e}");
    }
}

fn run(shared: &Shared, inject: &Inject) {
    let start = Instant::now();
    let mut resyncs = RESYNCS.iter().map(|d| start + *d).peekable();
    let mut beat = start;
    loop {
        let now = Instant::now();
        if resyncs.next_if(|at| now >= *at).is_some() {
            shared.pusher.resync();
        }
        if now >= beat {
            beat += BEAT_EVERY;
            tick(shared, inject);
        }
        let next = resyncs.peek().map_or(beat, |at| beat.min(*at));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// One beat: the link noted, this node's beat sent, the silent nodes forgotten.
fn tick(shared: &Shared, inject: &Inject) {
    let Some(bus) = &shared.cluster else {
        return;
    };
    let stats = bus.stats();
    let now = Instant::now();
    shared.pusher.beat(stats.up, stats.published, now);
    let departed = shared.pusher.expire(&shared.hub.node_id, now);
    apply(shared, inject, departed);
}

/// Tells this node's clients (and, when it is the one, the webhooks) what a departure
/// means.
fn apply(shared: &Shared, inject: &Inject, departed: Departed) {
    let Departed {
        users,
        vacated,
        hooks,
    } = departed;
    for (topic, user) in users {
        let Some((app_id, channel)) = app::split_topic(&topic) else {
            continue;
        };
        let mut frame = Vec::with_capacity(96);
        write::member_removed(&mut frame, channel, &user);
        inject(&topic, &frame);
        if hooks {
            let (channel, user_id) = (channel.to_owned(), user);
            shared
                .webhooks
                .emit(app_id, Event::MemberRemoved { channel, user_id });
        }
    }
    if !hooks {
        return;
    }
    for topic in vacated {
        if let Some((app_id, channel)) = app::split_topic(&topic) {
            let channel = channel.to_owned();
            shared
                .webhooks
                .emit(app_id, Event::ChannelVacated { channel });
        }
    }
}
