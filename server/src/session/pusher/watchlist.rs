//! Watchlists (docs/pusher.md#watchlists): a connection signed in with a `watchlist` in its
//! user data is told which of those users are online (signed in on at least one connection,
//! on any node) and, from then on, each time one comes online or goes offline, as
//! `pusher_internal:watchlist_events`.
//!
//! A watched user's changes are a fan-out topic of their own
//! (`crate::pusher::signins::watch_topic`): each watching connection is a member, and the
//! connection whose sign-in (or end) changes the user's status publishes the event into it
//! through the one pipeline, so it reaches watchers on every core and every node like any
//! channel event. Whether a user is online anywhere comes from the registry, which counts
//! sign-ins per user and shares them with the other nodes like presence members.

use std::sync::Arc;

use ringcast_pusher::app::App;
use ringcast_pusher::write;

use super::Conn;
use crate::pusher::registry::Registry;
use crate::pusher::signins::watch_topic;
use crate::rooms::local::Class;
use crate::session::sink::Sink;

/// The `watchlist_events` frame for one user's new status.
pub fn status_frame(user_id: &str, online: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + user_id.len());
    write::watchlist_status(&mut out, user_id, online);
    out
}

impl Conn {
    /// After a successful `pusher:signin` as `user_id` with `watchlist`: replaces an earlier
    /// sign-in of this connection, counts this one (announcing `online` to the user's
    /// watchers when it is the first anywhere) and joins the watched users' topics; returns
    /// the frame telling this connection who of them is online now (none for an empty
    /// watchlist), to send after `signin_success`. Joining before reading the status means a
    /// change in between arrives as an event after that frame.
    pub(super) fn signed_in(
        &mut self,
        app: &App,
        user_id: &str,
        watchlist: &[String],
        sink: &mut Sink<'_>,
    ) -> Option<Vec<u8>> {
        // Signed in as the same user again: only the watchlist changes, so repeating a
        // signin never makes the user's watchers see it go offline and online.
        let same = self.user.as_deref() == Some(user_id);
        self.leave_watched(sink);
        if !same {
            self.sign_out(sink);
            if sink.pusher().sign_in(&app.id, user_id) {
                publish_status(sink, &app.id, user_id, true);
            }
            self.user = Some(Box::from(user_id));
        }
        let class = Class::Raw.with_deflate(self.deflate);
        for watched in watchlist {
            if watched.len() > app.limits.max_user_id_len {
                continue;
            }
            match sink.join(&watch_topic(&app.id, watched), class) {
                Ok(membership) => self.watching.push(membership),
                Err(e) => {
                    tracing::debug!(error = ?e, "pusher watchlist: a watched user's topic refused");
                }
            }
        }
        if watchlist.is_empty() {
            return None;
        }
        let status = sink.pusher().is_online(&app.id, watchlist);
        let online: Vec<&str> = (status.iter()).filter(|s| s.1).map(|s| s.0).collect();
        let offline: Vec<&str> = (status.iter()).filter(|s| !s.1).map(|s| s.0).collect();
        let mut out = Vec::with_capacity(64 + 8 * watchlist.len());
        write::watchlist_events(&mut out, &[("online", &online), ("offline", &offline)]);
        Some(out)
    }

    /// A sign-in as another user replaces the first: its user's sign-in is no longer counted
    /// (its watchers get `offline` if it was the last).
    fn sign_out(&mut self, sink: &mut Sink<'_>) {
        if let Some(user) = self.user.take()
            && sink.pusher().sign_out(&self.app_id, &user)
        {
            publish_status(sink, &self.app_id, &user, false);
        }
    }

    /// Leaves the watched users' topics (a new signin brings its own watchlist).
    fn leave_watched(&mut self, sink: &mut Sink<'_>) {
        for (room, slot) in self.watching.drain(..) {
            if let Some(own) = sink.leave(&room, slot) {
                debug_assert!(own == slot);
            }
        }
    }

    /// The connection ends: the `offline` event its signed-in user's watchers get, when it
    /// was the user's last sign-in anywhere (its topic and frame), to publish.
    pub(super) fn sign_out_at_end(&mut self, registry: &Registry) -> Option<(Arc<str>, Vec<u8>)> {
        let user = self.user.as_deref()?;
        registry.sign_out(&self.app_id, user).then(|| {
            (
                Arc::from(watch_topic(&self.app_id, user)),
                status_frame(user, false),
            )
        })
    }
}

/// Publishes `user_id`'s new status into its watch topic (a room on this worker when some
/// watcher is here; the pipeline finds the others).
fn publish_status(sink: &mut Sink<'_>, app_id: &str, user_id: &str, online: bool) {
    let topic: Arc<str> = Arc::from(watch_topic(app_id, user_id));
    let room = sink.find_room(&topic);
    sink.publish_pusher(&topic, room.as_ref(), &status_frame(user_id, online), None);
}
