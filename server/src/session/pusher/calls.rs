//! The calls of the Pusher HTTP API (docs/pusher.md#http-api), authenticated by the query
//! signature (`ringcast_pusher::http_api::authenticate`: `auth_key`, `auth_timestamp` within
//! 600 s, `auth_version`, `body_md5`, `auth_signature`, constant-time).
//!
//! Events enter the one pipeline as server API publishes (`Source::Api`): one frame per
//! event and channel, encoded once, to every subscriber on every core and node; the
//! connection of the call's `socket_id` does not get it when it is on this node. Channel
//! queries read this process's registry.

use std::cell::RefCell;
use std::sync::Arc;

use ringcast_pusher::app::{self, App};
use ringcast_pusher::http_answer::{self, ChannelInfo};
use ringcast_pusher::http_api::{self, ApiError, Info, Route, Trigger};
use ringcast_pusher::json::Dom;
use ringcast_pusher::socket_id::SocketId;

use crate::pusher::nodes::node_tag;
use ringcast_pusher::write;

use crate::pubsub::orders::{Act, Order};
use crate::pusher::registry::Registry;
use crate::session::sink::Sink;

thread_local! {
    /// The worker's parser of request bodies (reused buffers).
    static DOM: RefCell<Dom> = RefCell::new(Dom::default());
}

/// The close code of a connection a `terminate_connections` ends.
const TERMINATED: u16 = 4009;

/// Answers one request: `(200, JSON)`, or the refusal.
///
/// # Errors
/// The [`ApiError`] Pusher answers with (its status and plain-text message).
pub fn answer(
    method: &str,
    target: &str,
    body: &[u8],
    sink: &mut Sink<'_>,
) -> Result<(u16, Vec<u8>), ApiError> {
    let cfg = sink.config();
    let apps = cfg.pusher.as_deref().ok_or(ApiError::NotFound)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (app_id, route) = http_api::route(&cfg.pusher_path_prefix, method, path)?;
    let now = crate::session::auth::now_unix();
    let (app, params) = http_api::authenticate(apps, app_id, method, path, query, body, now)?;
    let mut out = Vec::with_capacity(64);
    let registry = sink.pusher();
    match route {
        Route::Events => {
            let t =
                DOM.with(|d| http_api::parse_trigger(&mut d.borrow_mut(), body, &app.limits))?;
            trigger(app, &t, sink);
            let infos = t.info.any().then(|| {
                (t.channels.iter())
                    .map(|c| (c.as_str(), info(registry, app, c, t.info)))
                    .collect::<Vec<_>>()
            });
            http_answer::write_trigger_answer(&mut out, infos);
        }
        Route::BatchEvents => {
            let batch =
                DOM.with(|d| http_api::parse_batch(&mut d.borrow_mut(), body, &app.limits))?;
            for t in &batch {
                trigger(app, t, sink);
            }
            let infos = batch.iter().any(|t| t.info.any()).then(|| {
                (batch.iter())
                    .map(|t| info(registry, app, &t.channels[0], t.info))
                    .collect::<Vec<_>>()
            });
            http_answer::write_batch_answer(&mut out, infos);
        }
        Route::Channels => {
            let prefix = params.get("filter_by_prefix");
            let wanted = Info::parse(params.get("info"));
            http_answer::check_channels_query(wanted, prefix)?;
            let channels = registry.channels(&app.id, prefix.unwrap_or(""));
            http_answer::write_channels(
                &mut out,
                channels.iter().map(|c| {
                    let user_count = wanted.user_count.then_some(c.users as u64);
                    let info = ChannelInfo {
                        user_count,
                        subscription_count: None,
                    };
                    (c.name.as_str(), info)
                }),
            );
        }
        Route::Channel(name) => {
            let wanted = Info::parse(params.get("info"));
            http_answer::check_channel_query(&name, wanted, &app.limits)?;
            let found = registry.info(&app::topic(&app.id, &name));
            let c = found.as_ref();
            let info = ChannelInfo {
                user_count: wanted.user_count.then(|| c.map_or(0, |c| c.users as u64)),
                subscription_count: (wanted.subscription_count)
                    .then(|| c.map_or(0, |c| c.subscriptions)),
            };
            http_answer::write_channel(&mut out, c.is_some(), info);
        }
        Route::ChannelUsers(name) => {
            http_answer::check_users_query(&name, &app.limits)?;
            let users = registry.users(&app::topic(&app.id, &name));
            http_answer::write_users(&mut out, users.iter().map(String::as_str));
        }
        Route::TerminateUserConnections(user) => {
            // Applied by every worker on its next tick, and by the other nodes from the bus,
            // like the server API's disconnect (docs/api.md#disconnect).
            let order = Order {
                user: Box::from(super::user_key(&app.id, &user)),
                client: None,
                act: Act::Disconnect {
                    code: TERMINATED,
                    reason: Box::from("Connection terminated by the app"),
                },
            };
            if let Some(bus) = sink.cluster() {
                bus.publish_order(crate::pubsub::orders::encode(&order, None));
            }
            sink.hub().orders.post(order);
            out.extend_from_slice(b"{}");
        }
    }
    Ok((200, out))
}

/// Publishes `t` to each of its channels.
fn trigger(app: &App, t: &Trigger, sink: &mut Sink<'_>) {
    let workers = sink.config().workers;
    let here = node_tag(&sink.hub().node_id);
    let tag = t.socket_id.map(|s| s.high >> 31);
    // A socket id of another node that this node has heard from: that node publishes the
    // event without the connection (docs/pusher.md#across-a-cluster).
    let owner = tag
        .filter(|&tag| tag != here)
        .and_then(|tag| sink.pusher().node_of_tag(tag));
    let exclude = t
        .socket_id
        .filter(|_| tag == Some(here))
        .and_then(|s| local_socket(s, workers));
    for channel in &t.channels {
        let mut frame = Vec::with_capacity(64 + t.name.len() + channel.len() + t.data.len());
        write::channel_event(&mut frame, &t.name, channel, &t.data, None);
        if let (Some(node), Some(s)) = (&owner, t.socket_id) {
            let socket = (s.low >> 56, s.low & 0xffff_ffff);
            let topic = app::topic(&app.id, channel);
            sink.pusher()
                .forward_event(node.clone(), topic, &frame, socket);
            continue;
        }
        let topic: Arc<str> = Arc::from(app::topic(&app.id, channel));
        let room = sink.find_room(&topic);
        sink.publish_pusher(&topic, room.as_ref(), &frame, exclude);
    }
}

/// The (worker, slab key) a socket id of this server names (`session::pusher::upgrade`
/// writes them into its part after the dot); `None` for one it cannot have made.
fn local_socket(id: SocketId, workers: usize) -> Option<(usize, usize)> {
    let worker = (id.low >> 56) as usize;
    let key = (id.low & 0xffff_ffff) as usize;
    (worker < workers).then_some((worker, key))
}

/// The attributes `wanted` of `channel` (this process's view).
fn info(registry: &Registry, app: &App, channel: &str, wanted: Info) -> ChannelInfo {
    let found = registry.info(&app::topic(&app.id, channel));
    let c = found.as_ref();
    ChannelInfo {
        user_count: (wanted.user_count && channel.starts_with("presence-"))
            .then(|| c.map_or(0, |c| c.users as u64)),
        subscription_count: wanted
            .subscription_count
            .then(|| c.map_or(0, |c| c.subscriptions)),
    }
}
