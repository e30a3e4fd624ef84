//! Presence: a subscribe's `channel_data` (`{"user_id":…,"user_info":…}`), a signin's
//! `user_data` (`{"id":…,"user_info":…,"watchlist":[…]}`), and [`Roster`], the members of one
//! presence channel counted per user (a user with two tabs is one member: one `member_added`
//! when the first connection joins, one `member_removed` when the last leaves).

use std::collections::HashMap;

use simd_json::prelude::*;
use thiserror::Error;

use crate::app::Limits;
use crate::json::{self, Dom};

/// A presence member's data, owned (it outlives the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberData {
    /// The user id (a numeric one written in decimal).
    pub user_id: String,
    /// The `user_info` JSON text, if any.
    pub user_info: Option<String>,
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// `id`.
    pub id: String,
    /// The `user_info` JSON text, if any.
    pub user_info: Option<String>,
    /// `watchlist` user ids, at most 100 kept.
    pub watchlist: Vec<String>,
    /// Whether the watchlist was longer than 100 (the server then also sends 4302).
    pub watchlist_truncated: bool,
}

/// Most watchlist entries kept (documented).
pub const MAX_WATCHLIST: usize = 100;

/// Why `channel_data` or `user_data` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PresenceError {
    /// Not a JSON object.
    #[error("not a JSON object")]
    BadJson,
    /// No string (or integer) `user_id` / `id`.
    #[error("missing user id")]
    NoUserId,
    /// The user id is empty or longer than the app's limit.
    #[error("user id is empty or too long")]
    UserIdLength,
    /// `user_info` is longer than the app's limit.
    #[error("user_info is too large")]
    UserInfoTooLarge,
    /// `watchlist` is not an array of user ids.
    #[error("watchlist is not an array of user ids")]
    BadWatchlist,
}

/// Parses a presence subscribe's raw `channel_data` (after its signature was checked).
///
/// # Errors
/// [`PresenceError`] for a non-object, a missing or oversized `user_id`, or an oversized
/// `user_info`.
pub fn parse_channel_data(
    dom: &mut Dom,
    channel_data: &str,
    limits: &Limits,
) -> Result<MemberData, PresenceError> {
    let value = dom
        .parse(channel_data.as_bytes())
        .filter(|v| v.as_object().is_some())
        .ok_or(PresenceError::BadJson)?;
    let user_id = value
        .get("user_id")
        .and_then(json::string_or_integer)
        .ok_or(PresenceError::NoUserId)?;
    if user_id.is_empty() || user_id.len() > limits.max_user_id_len {
        return Err(PresenceError::UserIdLength);
    }
    let user_info = user_info(value.get("user_info"), limits)?;
    Ok(MemberData { user_id, user_info })
}

/// Parses a signin's raw `user_data` (after its signature was checked).
///
/// # Errors
/// [`PresenceError`] for a non-object, a missing or oversized `id`, an oversized `user_info`
/// or a `watchlist` that is not an array of ids.
pub fn parse_user_data(
    dom: &mut Dom,
    user_data: &str,
    limits: &Limits,
) -> Result<UserData, PresenceError> {
    let value = dom
        .parse(user_data.as_bytes())
        .filter(|v| v.as_object().is_some())
        .ok_or(PresenceError::BadJson)?;
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or(PresenceError::NoUserId)?;
    if id.is_empty() || id.len() > limits.max_user_id_len {
        return Err(PresenceError::UserIdLength);
    }
    let user_info = user_info(value.get("user_info"), limits)?;
    let mut watchlist = Vec::new();
    let mut watchlist_truncated = false;
    if let Some(list) = value.get("watchlist").filter(|v| !v.is_null()) {
        let list = list.as_array().ok_or(PresenceError::BadWatchlist)?;
        for item in list {
            let id = json::string_or_integer(item).ok_or(PresenceError::BadWatchlist)?;
            if watchlist.len() == MAX_WATCHLIST {
                watchlist_truncated = true;
                break;
            }
            watchlist.push(id);
        }
    }
    Ok(UserData {
        id,
        user_info,
        watchlist,
        watchlist_truncated,
    })
}

fn user_info(
    value: Option<&simd_json::BorrowedValue<'_>>,
    limits: &Limits,
) -> Result<Option<String>, PresenceError> {
    let Some(info) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = json::text(info);
    if text.len() > limits.max_user_info_bytes {
        return Err(PresenceError::UserInfoTooLarge);
    }
    Ok(Some(text))
}

/// What a join did to the channel's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The user's first connection: send `member_added` to the others, `member_added` webhook.
    NewMember,
    /// The user was already a member through another connection: no event.
    AnotherConnection,
    /// The channel already has `max_presence_members` users: refuse the subscription.
    Full,
}

/// What a leave did to the channel's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The user's last connection left: send `member_removed`, `member_removed` webhook.
    MemberGone,
    /// The user is still a member through another connection: no event.
    StillMember,
    /// The user was not a member (nothing changes).
    NotMember,
}

/// The members of one presence channel, per user: the info of their first connection and
/// how many connections they have in it.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    users: HashMap<String, (Option<String>, u32)>,
}

impl Roster {
    /// An empty roster.
    #[must_use]
    pub fn new() -> Roster {
        Roster::default()
    }

    /// One more connection of `member.user_id`; at most `max_members` distinct users.
    pub fn join(&mut self, member: &MemberData, max_members: usize) -> Joined {
        if let Some((_, n)) = self.users.get_mut(&member.user_id) {
            *n += 1;
            return Joined::AnotherConnection;
        }
        if self.users.len() >= max_members {
            return Joined::Full;
        }
        self.users
            .insert(member.user_id.clone(), (member.user_info.clone(), 1));
        Joined::NewMember
    }

    /// One connection of `user_id` fewer.
    pub fn leave(&mut self, user_id: &str) -> Left {
        let Some((_, n)) = self.users.get_mut(user_id) else {
            return Left::NotMember;
        };
        *n -= 1;
        if *n > 0 {
            return Left::StillMember;
        }
        self.users.remove(user_id);
        Left::MemberGone
    }

    /// Distinct users (the `user_count` of the HTTP API, the `count` of the snapshot).
    #[must_use]
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `user_id` is a member.
    #[must_use]
    pub fn contains(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    /// Whether there are no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The members, as [`crate::write::presence_subscription_succeeded`] takes them.
    pub fn members(&self) -> impl Iterator<Item = crate::write::Member<'_>> + Clone {
        self.users
            .iter()
            .map(|(id, (info, _))| crate::write::Member {
                user_id: id,
                user_info: info.as_deref(),
            })
    }
}
