//! What each connection of a pub/sub thread is: a subscriber ([`SubState`] says where its
//! subscription stands) or a publisher, with the state its checks need.

use super::api::ApiTemplate;
use super::check::SubscriberCheck;
use super::presence_view::PresenceView;
use super::wire::PublishTemplate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubState {
    /// Not open yet, or dropped for churn and not reopened.
    Down,
    /// `subscribe` sent, no `subscribed` yet.
    Asked,
    /// `unsubscribe` sent (`--unsubscribe-churn`), no `unsubscribed` yet.
    Leaving,
    /// Unsubscribed, resumes at `away` (in `Pubsub`).
    Away,
    /// Subscribed.
    Live,
}

/// One connection's part in the run.
pub(super) enum Role {
    Sub {
        topic: usize,
        check: SubscriberCheck,
        state: SubState,
        next_id: u64,
        subscribed_at: Option<u64>,
        unique: u64,
        closed_by_server: bool,
        presence: PresenceView,
    },
    Pub {
        id: usize,
        topic: usize,
        template: PublishTemplate,
        /// The `api` scenario's request instead of `template`.
        api: Option<ApiTemplate>,
        subscribed: bool,
        seq: u64,
        /// Next own sequence not yet back.
        acked: u64,
        measured: u64,
        /// Sequence of the first measured message.
        first_measured: Option<u64>,
        next_due: u64,
        done: bool,
    },
}
