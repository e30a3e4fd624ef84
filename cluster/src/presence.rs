//! Presence entries in Redis: hash `<prefix>:presence:<room>`, field `<node>\n<client>`, value
//! `<expiry unix ms>\n<user>`. Redis 7.0 has no per-field TTL, so each entry carries its own
//! expiry, every node re-writes its entries every TTL/3, and readers skip expired ones. Expiry is
//! wall-clock time: nodes' clocks must agree to well within the TTL.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// Parses one hash entry; `None` when malformed or expired at `now`.
pub(crate) fn parse(field: &str, value: &str, now: u64) -> Option<PresenceMember> {
    let (node, client) = field.split_once('\n')?;
    let (expiry, user) = value.split_once('\n')?;
    if expiry.parse::<u64>().ok()? <= now {
        return None;
    }
    Some(PresenceMember {
        node: node.to_owned(),
        client: client.to_owned(),
        user: user.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let f = field("n1", "c\n7");
        let v = value(1000, "ana\nb");
        let m = parse(&f, &v, 999).unwrap();
        assert_eq!(
            m,
            PresenceMember {
                node: "n1".into(),
                client: "c\n7".into(),
                user: "ana\nb".into()
            }
        );
        assert_eq!(parse(&f, &v, 1000), None);
        assert_eq!(parse("nofield", &v, 0), None);
        assert_eq!(parse(&f, "x\nuser", 0), None);
    }
}
