//! `pusher:subscribe` / `pusher:unsubscribe` and the end of a connection's subscriptions
//! (docs/pusher.md#channels): names checked, signatures checked in constant time
//! (`ringcast_pusher::auth`), presence members counted per user in the process's registry
//! (`crate::pusher::registry`, cluster-wide in a cluster), `member_added` /
//! `member_removed` published into the channel's room like any channel event.

use std::cell::RefCell;
use std::sync::Arc;

use ringcast_protocol::frame::OpCode;
use ringcast_pusher::app::{self, App};
use ringcast_pusher::auth;
use ringcast_pusher::channel::Channel;
use ringcast_pusher::json::Dom;
use ringcast_pusher::message::Subscribe;
use ringcast_pusher::presence::{self, Joined, Left};
use ringcast_pusher::webhook::Event;
use ringcast_pusher::write;

use super::{Conn, Sub};
use crate::rooms::SharedRoom;
use crate::rooms::local::Class;
use crate::session::sink::Sink;

thread_local! {
    /// The worker's parser of `channel_data` (reused buffers).
    static DOM: RefCell<Dom> = RefCell::new(Dom::default());
}

/// An event to publish on behalf of a connection that is ending (the worker publishes it,
/// `Session::release`).
pub enum Farewell {
    /// A channel event into a room the connection is still a member of (`member_removed`,
    /// `subscription_count`).
    Room(Arc<SharedRoom>, Vec<u8>),
    /// An event into a topic the connection is not a member of: its signed-in user's
    /// watchers' `offline` (`super::watchlist`).
    Topic(Arc<str>, Vec<u8>),
}

impl Conn {
    pub(super) fn subscribe(&mut self, app: &App, s: &Subscribe, sink: &mut Sink<'_>) {
        let name = s.channel.as_str();
        let channel = match Channel::parse(name, app.limits.max_channel_name_len) {
            Ok(c) => c,
            Err(e) => return refuse(sink, name, "InvalidChannel", &e.to_string(), 400),
        };
        if self.subs.iter().any(|sub| &*sub.channel == name) {
            // Already subscribed: Pusher answers nothing new; the client knows it is in.
            return;
        }
        if let Some(user) = channel.server_to_user()
            && self.user.as_deref() != Some(user)
        {
            let msg = "only the connection signed in as this user may subscribe";
            return refuse(sink, name, "AuthError", msg, 403);
        }
        let channel_data = channel.is_presence().then_some(s.channel_data.as_deref());
        if channel.requires_auth() {
            let Some(signature) = s.auth.as_deref() else {
                return refuse(sink, name, "AuthError", "auth is missing", 401);
            };
            let data = channel_data.flatten();
            if channel.is_presence() && data.is_none() {
                return refuse(sink, name, "AuthError", "channel_data is missing", 401);
            }
            if let Err(e) = auth::verify_channel(app, &self.socket_text, name, data, signature) {
                return refuse(sink, name, "AuthError", &e.to_string(), 401);
            }
        }
        let member = match channel_data.flatten() {
            None => None,
            Some(data) => {
                match DOM
                    .with(|d| presence::parse_channel_data(&mut d.borrow_mut(), data, &app.limits))
                {
                    Ok(m) => Some(m),
                    Err(e) => return refuse(sink, name, "InvalidChannelData", &e.to_string(), 400),
                }
            }
        };
        if self.subs.len() >= sink.config().max_subscriptions {
            let msg = "--max-subscriptions reached";
            return refuse(sink, name, "LimitReached", msg, 429);
        }
        let topic = app::topic(&app.id, name);
        let Ok((room, slot)) = sink.join(&topic, Class::Raw.with_deflate(self.deflate)) else {
            let msg = "the server's room limit is reached";
            return refuse(sink, name, "LimitReached", msg, 503);
        };
        let registry = sink.pusher();
        if registry.subscribe(&topic) {
            sink.webhooks().emit(
                &app.id,
                Event::ChannelOccupied {
                    channel: name.to_owned(),
                },
            );
        }
        let mut out = Vec::with_capacity(96);
        let mut joined_user = None;
        if let Some(m) = &member {
            let join = registry.presence_join(&topic, name, m, app.limits.max_presence_members);
            if join.joined == Joined::Full {
                self.subs.push(Sub {
                    channel: Box::from(name),
                    kind: channel.kind,
                    room,
                    slot,
                    member: None,
                    counted: false,
                });
                self.end_sub(app, self.subs.len() - 1, sink);
                let msg = "the presence channel has its maximum of members";
                return refuse(sink, name, "LimitReached", msg, 403);
            }
            out = join.succeeded;
            if join.joined == Joined::NewMember {
                let mut added = Vec::with_capacity(96);
                write::member_added(
                    &mut added,
                    name,
                    write::Member {
                        user_id: &m.user_id,
                        user_info: m.user_info.as_deref(),
                    },
                );
                sink.publish(&room, OpCode::Text, &added);
            }
            if join.hook {
                sink.webhooks().emit(
                    &app.id,
                    Event::MemberAdded {
                        channel: name.to_owned(),
                        user_id: m.user_id.clone(),
                    },
                );
            }
            joined_user = Some(Box::from(m.user_id.as_str()));
        } else {
            write::subscription_succeeded(&mut out, name);
        }
        sink.reply_frame(OpCode::Text, &out);
        if channel.cache {
            self.cache_answer(&room, sink);
        }
        let counted = app.limits.subscription_count && !channel.is_presence();
        if counted {
            // The subscriber too (a publish never comes back to its sender).
            let frame = super::count::changed(registry, sink.webhooks(), &app.id, name, &topic);
            sink.reply_frame(OpCode::Text, &frame);
            sink.publish(&room, OpCode::Text, &frame);
        }
        self.subs.push(Sub {
            channel: Box::from(name),
            kind: channel.kind,
            room,
            slot,
            member: joined_user,
            counted,
        });
    }

    pub(super) fn unsubscribe(&mut self, app: &App, channel: &str, sink: &mut Sink<'_>) {
        if let Some(i) = self.subs.iter().position(|s| &*s.channel == channel) {
            self.end_sub(app, i, sink);
        }
    }

    /// Leaves subscription `i`: its room, the registry, and the presence roster (with
    /// `member_removed` when it was the user's last connection).
    fn end_sub(&mut self, app: &App, i: usize, sink: &mut Sink<'_>) {
        let sub = self.subs.swap_remove(i);
        if let Some(frame) = farewell(sink.pusher(), sink.webhooks(), &app.id, &sub) {
            sink.publish(&sub.room, OpCode::Text, &frame);
        }
        if let Some(own) = sink.leave(&sub.room, sub.slot) {
            // Only one membership per room: the moved one cannot be ours.
            debug_assert!(own == sub.slot);
        }
    }

    /// [`super::PusherSession::release`].
    pub(super) fn release(
        &mut self,
        registry: &crate::pusher::registry::Registry,
        webhooks: &crate::webhooks::Webhooks,
    ) -> Vec<Farewell> {
        if std::mem::replace(&mut self.released, true) {
            return Vec::new();
        }
        registry.connections.disconnect(&self.app_id);
        let mut out: Vec<Farewell> = (self.subs.iter())
            .filter_map(|sub| {
                let frame = farewell(registry, webhooks, &self.app_id, sub)?;
                Some(Farewell::Room(sub.room.clone(), frame))
            })
            .collect();
        if let Some((topic, frame)) = self.sign_out_at_end(registry) {
            out.push(Farewell::Topic(topic, frame));
        }
        out
    }
}

/// Takes `sub` out of the registry: the `member_removed` frame when it was its user's last
/// connection in the channel, or the `subscription_count` frame of a counted channel;
/// webhooks for a vacated channel, a removed member and a count.
fn farewell(
    registry: &crate::pusher::registry::Registry,
    webhooks: &crate::webhooks::Webhooks,
    app_id: &str,
    sub: &Sub,
) -> Option<Vec<u8>> {
    let topic = &*sub.room.name;
    let mut frame = None;
    if let Some(user) = sub.member.as_deref()
        && registry.presence_leave(topic, user) == Left::MemberGone
    {
        let mut out = Vec::with_capacity(96);
        write::member_removed(&mut out, &sub.channel, user);
        frame = Some(out);
        webhooks.emit(
            app_id,
            Event::MemberRemoved {
                channel: sub.channel.to_string(),
                user_id: user.to_owned(),
            },
        );
    }
    if registry.unsubscribe(topic) {
        webhooks.emit(
            app_id,
            Event::ChannelVacated {
                channel: sub.channel.to_string(),
            },
        );
    }
    if sub.counted {
        frame = Some(super::count::changed(
            registry,
            webhooks,
            app_id,
            &sub.channel,
            topic,
        ));
    }
    frame
}

/// Answers a refused subscription with `pusher:subscription_error` (pusher-js and Laravel
/// Echo report it on the channel's handlers); the connection stays open.
fn refuse(sink: &mut Sink<'_>, channel: &str, kind: &str, message: &str, status: u16) {
    let mut out = Vec::with_capacity(96 + message.len());
    write::subscription_error(&mut out, channel, kind, message, status);
    sink.reply_frame(OpCode::Text, &out);
}
