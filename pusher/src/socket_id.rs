//! Socket ids: `N.N`, two decimal integers, as Pusher's server SDKs check them
//! (`\A\d+\.\d+\z`) before they sign anything for a connection.

use std::fmt;

/// A connection's socket id. It is part of every channel and user signature, so it must be
/// unique and should be unguessable: the server draws both halves at random (or one half
/// from its node/worker and one at random); this crate only formats and parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    /// The part before the dot.
    pub high: u64,
    /// The part after the dot.
    pub low: u64,
}

impl SocketId {
    /// Longest text form: two 20-digit numbers and a dot.
    pub const MAX_LEN: usize = 41;

    /// The id `high.low`.
    #[must_use]
    pub const fn new(high: u64, low: u64) -> SocketId {
        SocketId { high, low }
    }

    /// Parses `N.N` (ASCII digits only, each half fitting a `u64`); `None` otherwise.
    #[must_use]
    pub fn parse(text: &str) -> Option<SocketId> {
        let (high, low) = text.split_once('.')?;
        Some(SocketId {
            high: digits(high)?,
            low: digits(low)?,
        })
    }
}

/// A non-empty run of ASCII digits as a `u64` (no sign, no `+`, which `str::parse` allows).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}
