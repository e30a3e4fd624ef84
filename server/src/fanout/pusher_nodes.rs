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
//!   what they would have done had they closed their connections ([`tell`]): a
//!   `pusher_internal:member_removed` to this node's subscribers for each user present
//!   nowhere now (delivered here only, as if it came from the bus: every survivor tells its
//!   own clients), and, on the one survivor with the smallest id, the `member_removed` and
//!   `channel_vacated` webhooks. `fanout::bus` tells the same way what a restart or a full
//!   state that differs from what was known means.
//!
//! Off the workers and the bus thread: a beat or an expiry never waits behind either.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_pusher::webhook::Event;
use ringcast_pusher::{app, write};

use crate::pusher::liveness::BEAT_EVERY;
use crate::pusher::shift::Changes;
use crate::pusher::signins;
use crate::shared::Shared;

/// Delivers text messages to this node's members of a topic (`bus::Inbound::inject`).
pub type Inject = Box<dyn Fn(&str, &[Vec<u8>]) + Send>;

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
    let changes = shared.pusher.expire(&shared.hub.node_id, now);
    tell(shared, &**inject, changes);
}

/// Tells this node's subscribers what a change no delta announced means
/// (`crate::pusher::shift`: a departure, or a full state that differs), and, when this node
/// is the one that sends them, the webhooks.
pub fn tell(shared: &Shared, inject: &dyn Fn(&str, &[Vec<u8>]), mut changes: Changes) {
    // Users signed in nowhere now, or again: their watchers' `offline` / `online`
    // (docs/pusher.md#watchlists), no webhook.
    let mut watch: Vec<(String, Vec<u8>)> = Vec::new();
    let mut signed_in = |topic: &str, user: &str, online: bool| {
        let app_id = app::split_topic(topic)
            .filter(|(app_id, _)| topic == signins::online_topic(app_id))
            .map(|(app_id, _)| app_id.to_owned());
        if let Some(app_id) = &app_id {
            let mut frame = Vec::with_capacity(96 + user.len());
            write::watchlist_status(&mut frame, user, online);
            watch.push((signins::watch_topic(app_id, user), frame));
        }
        app_id.is_some()
    };
    changes
        .removed
        .retain(|(topic, user)| !signed_in(topic, user, false));
    changes
        .added
        .retain(|(topic, user, _)| !signed_in(topic, user, true));
    for (topic, frame) in &watch {
        inject(topic, std::slice::from_ref(frame));
    }
    let hook = |topic: &str, event: &dyn Fn(String) -> Event| {
        if let Some((app_id, channel)) = app::split_topic(topic).filter(|_| changes.hooks) {
            shared.webhooks.emit(app_id, event(channel.to_owned()));
        }
    };
    // Removals before arrivals, and for each topic its frames in one batch.
    let mut frames: Vec<(&str, Vec<u8>)> = Vec::new();
    for (topic, user) in &changes.removed {
        if let Some((_, channel)) = app::split_topic(topic) {
            let mut frame = Vec::with_capacity(96);
            write::member_removed(&mut frame, channel, user);
            frames.push((topic, frame));
        }
        hook(topic, &|channel| Event::MemberRemoved {
            channel,
            user_id: user.clone(),
        });
    }
    for topic in &changes.vacated {
        hook(topic, &|channel| Event::ChannelVacated { channel });
    }
    for topic in &changes.occupied {
        hook(topic, &|channel| Event::ChannelOccupied { channel });
    }
    for (topic, user, info) in &changes.added {
        if let Some((_, channel)) = app::split_topic(topic) {
            let mut frame = Vec::with_capacity(96);
            let member = write::Member {
                user_id: user,
                user_info: info.as_deref(),
            };
            write::member_added(&mut frame, channel, member);
            frames.push((topic, frame));
        }
        hook(topic, &|channel| Event::MemberAdded {
            channel,
            user_id: user.clone(),
        });
    }
    frames.sort_by(|a, b| a.0.cmp(b.0)); // stable: removals stay first
    for run in frames.chunk_by(|a, b| a.0 == b.0) {
        let list: Vec<Vec<u8>> = run.iter().map(|(_, f)| f.clone()).collect();
        inject(run[0].0, &list);
    }
}
