//! Presence entries in Redis: hash `<prefix>:presence:<room>`, field `<node>\n<client>`, value
//! `<expiry unix ms>\n<user>`. Redis 7.0 has no per-field TTL, so each entry carries its own
//! expiry, every node re-writes its entries every TTL/3, and readers skip expired ones. Expiry is
//! wall-clock time: nodes' clocks must agree to well within the TTL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest presence TTL a node may use (`BusConfig::presence_ttl` is checked against it).
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3600);
/// Clock difference between nodes tolerated on top of [`MAX_TTL`] when judging an expiry.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// One member of a room, on any node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PresenceMember {
    /// The node the client is connected to.
    pub node: String,
    /// The client's id, unique on its node.
    pub client: String,
    /// The user the client authenticated as (or any label the server chooses).
    pub user: String,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The hash field for a client of `node`.
pub(crate) fn field(node: &str, client: &str) -> String {
    format!("{node}\n{client}")
}

/// The hash value: expiry and user.
pub(crate) fn value(expiry_ms: u64, user: &str) -> String {
    format!("{expiry_ms}\n{user}")
}

/// One hash entry, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Live(PresenceMember),
    Expired,
    /// No node writes this: not UTF-8, not `<node>\n<client>` / `<expiry>\n<user>`, or an
    /// expiry further than [`MAX_TTL`] (plus clock skew) ahead, which would be listed for years.
    Bad,
}

/// Reads one hash entry at `now` (Unix ms).
pub(crate) fn parse(field: &[u8], value: &[u8], now: u64) -> Entry {
    let parsed = (|| {
        let (node, client) = std::str::from_utf8(field).ok()?.split_once('\n')?;
        let (expiry, user) = std::str::from_utf8(value).ok()?.split_once('\n')?;
        Some((node, client, expiry.parse::<u64>().ok()?, user))
    })();
    let Some((node, client, expiry, user)) = parsed else {
        return Entry::Bad;
    };
    let latest = now.saturating_add((MAX_TTL + CLOCK_SKEW).as_millis() as u64);
    if expiry > latest {
        Entry::Bad
    } else if expiry <= now {
        Entry::Expired
    } else {
        Entry::Live(PresenceMember {
            node: node.to_owned(),
            client: client.to_owned(),
            user: user.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let f = field("n1", "c\n7");
        let v = value(1000, "ana\nb");
        let m = parse(f.as_bytes(), v.as_bytes(), 999);
        assert_eq!(
            m,
            Entry::Live(PresenceMember {
                node: "n1".into(),
                client: "c\n7".into(),
                user: "ana\nb".into()
            })
        );
        assert_eq!(parse(f.as_bytes(), v.as_bytes(), 1000), Entry::Expired);
        assert_eq!(parse(b"nofield", v.as_bytes(), 0), Entry::Bad);
        assert_eq!(parse(f.as_bytes(), b"x\nuser", 0), Entry::Bad);
        assert_eq!(parse(b"n\n\xff", v.as_bytes(), 0), Entry::Bad);
        assert_eq!(parse(f.as_bytes(), b"1000\n\xc3", 0), Entry::Bad);
    }

    #[test]
    fn an_expiry_no_node_sets_is_bad() {
        let now = 1_000_000_000;
        let max = (MAX_TTL + CLOCK_SKEW).as_millis() as u64;
        let f = field("n", "c");
        let at = |expiry: u64| parse(f.as_bytes(), value(expiry, "u").as_bytes(), now);
        assert!(matches!(at(now + max), Entry::Live(_)));
        assert_eq!(at(now + max + 1), Entry::Bad);
        assert_eq!(at(u64::MAX), Entry::Bad);
        assert_eq!(parse(f.as_bytes(), b"1\nu", u64::MAX), Entry::Expired);
    }
}
