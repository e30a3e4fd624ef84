//! Channel names and kinds (Pusher's "Channels" pages): public, `private-`, `presence-`,
//! `private-encrypted-`, the `cache-` variants of each, and the server-to-user channel
//! `#server-to-user-{user_id}` of a signed-in connection.

use thiserror::Error;

/// The prefix of a user's server-to-user channel (subscribed by pusher-js after a signin).
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// What a channel's name makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// No prefix (or `cache-`): anyone with the app key may subscribe.
    Public,
    /// `private-` (or `private-cache-`): needs a channel auth signature.
    Private,
    /// `private-encrypted-` (or `private-encrypted-cache-`): needs a signature; its events
    /// are end-to-end encrypted by the app server, so clients may not send events on it.
    PrivateEncrypted,
    /// `presence-` (or `presence-cache-`): needs a signature over `channel_data` too, and
    /// tracks its members.
    Presence,
    /// `#server-to-user-{id}`: only the connection signed in as `id` may subscribe.
    ServerToUser,
}

/// Why a channel name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChannelError {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than the app's limit.
    #[error("channel name is too long")]
    TooLong,
    /// A character outside `A-Z a-z 0-9 _ - = @ , . ;` (or a `#` outside the
    /// server-to-user prefix).
    #[error("channel name may only hold A-Z a-z 0-9 _ - = @ , . ;")]
    BadChar,
}

/// A valid channel name with its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel<'a> {
    /// The full name.
    pub name: &'a str,
    /// Its kind.
    pub kind: Kind,
    /// Whether it is a cache channel (its last event is replayed to new subscribers, or
    /// `pusher:cache_miss` sent).
    pub cache: bool,
}

impl<'a> Channel<'a> {
    /// Checks `name` (at most `max_len` bytes) and classifies it.
    ///
    /// # Errors
    /// [`ChannelError`] for an empty or too long name or a character outside the documented
    /// set.
    pub fn parse(name: &'a str, max_len: usize) -> Result<Channel<'a>, ChannelError> {
        if name.is_empty() {
            return Err(ChannelError::Empty);
        }
        if name.len() > max_len {
            return Err(ChannelError::TooLong);
        }
        if let Some(user) = name.strip_prefix(SERVER_TO_USER_PREFIX) {
            if user.is_empty() || !user.bytes().all(allowed) {
                return Err(ChannelError::BadChar);
            }
            return Ok(Channel {
                name,
                kind: Kind::ServerToUser,
                cache: false,
            });
        }
        if !name.bytes().all(allowed) {
            return Err(ChannelError::BadChar);
        }
        let (kind, rest) = if let Some(rest) = name.strip_prefix("private-encrypted-") {
            (Kind::PrivateEncrypted, rest)
        } else if let Some(rest) = name.strip_prefix("private-") {
            (Kind::Private, rest)
        } else if let Some(rest) = name.strip_prefix("presence-") {
            (Kind::Presence, rest)
        } else {
            (Kind::Public, name)
        };
        Ok(Channel {
            name,
            kind,
            cache: rest.starts_with("cache-"),
        })
    }

    /// Whether a subscription needs an `auth` signature.
    #[must_use]
    pub fn requires_auth(&self) -> bool {
        matches!(
            self.kind,
            Kind::Private | Kind::PrivateEncrypted | Kind::Presence
        )
    }

    /// Whether the signature covers `channel_data` and the channel has members.
    #[must_use]
    pub fn is_presence(&self) -> bool {
        self.kind == Kind::Presence
    }

    /// Whether clients may send `client-*` events on it: private and presence channels
    /// only (not encrypted ones, whose events only the app server can encrypt).
    #[must_use]
    pub fn allows_client_events(&self) -> bool {
        matches!(self.kind, Kind::Private | Kind::Presence)
    }

    /// The user a server-to-user channel belongs to.
    #[must_use]
    pub fn server_to_user(&self) -> Option<&'a str> {
        match self.kind {
            Kind::ServerToUser => self.name.strip_prefix(SERVER_TO_USER_PREFIX),
            _ => None,
        }
    }
}

/// The documented channel-name characters.
const fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}
