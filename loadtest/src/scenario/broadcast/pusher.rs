//! The `pusher` scenario: `broadcast`'s accounting over the Pusher Channels dialect (protocol
//! 7), so ringcast can be compared with other Pusher servers (Sockudo, soketi) using the same
//! client. Room *i* is the channel `private-{prefix}{i}`; every connection subscribes with the
//! channel signature (`key:HMAC-SHA256(secret, socket_id:channel)`) once the server sent its
//! `socket_id`; publishers send their header as the `data` of a `client-m…` client event (the
//! server delivers it to every other subscriber, never back to its sender), and receivers read
//! the header out of the event's `data`. The event's name carries a number drawn per run, so
//! what an earlier run left behind (a cache channel's cached event, docs/pusher.md#cache-channels)
//! is told apart from this run's messages. The app must allow client events at the publishers'
//! rate (ringcast: `client_events_per_second` of a `[[pusher_apps]]` table).

use ringcast_pusher::{auth, write};

/// An app's key and secret, and this run's event name.
#[derive(Debug, Clone)]
pub struct Dialect {
    /// The app key (the path `/app/{key}` and the auth strings).
    pub key: String,
    /// The app secret (channel signatures).
    pub secret: String,
    /// The client event publishers send: `client-m` and a number of this run.
    event: String,
}

/// What a server message means to the scenario.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// `pusher:connection_established` with this socket id.
    Established(&'a str),
    /// `pusher_internal:subscription_succeeded`.
    Subscribed,
    /// A publisher's event: its `data` (our header and filler).
    Event(&'a [u8]),
    /// Anything else (`pusher:error`, pings, other events).
    Other,
}

impl Dialect {
    /// The app `key` / `secret`; `run` (drawn per run) names the event.
    pub fn new(key: String, secret: String, run: u32) -> Dialect {
        Dialect {
            key,
            secret,
            event: format!("client-m{run:08x}"),
        }
    }

    /// `payload` (ASCII header and filler) as the data of this run's client event on
    /// `channel`.
    pub fn wrap(&self, out: &mut Vec<u8>, channel: &str, payload: &[u8]) {
        out.clear();
        let data = std::str::from_utf8(payload).unwrap_or("");
        write::channel_event(out, &self.event, channel, data, None);
    }

    /// Classifies a server message (the server's own fixed key order: `event` first); an
    /// event of another run is `Other`.
    pub fn classify<'m>(&self, msg: &'m [u8]) -> Incoming<'m> {
        const EST: &[u8] = b"{\"event\":\"pusher:connection_established\"";
        const SUB: &[u8] = b"{\"event\":\"pusher_internal:subscription_succeeded\"";
        let ev = msg
            .strip_prefix(b"{\"event\":\"")
            .and_then(|m| m.strip_prefix(self.event.as_bytes()))
            .is_some_and(|m| m.starts_with(b"\""));
        if ev {
            let Some(at) = find(msg, b"\"data\":\"") else {
                return Incoming::Other;
            };
            let data = &msg[at + 8..];
            return match data.iter().position(|&b| b == b'"') {
                Some(end) => Incoming::Event(&data[..end]),
                None => Incoming::Other,
            };
        }
        if msg.starts_with(SUB) {
            return Incoming::Subscribed;
        }
        if msg.starts_with(EST) {
            // `"data":"{\"socket_id\":\"N.N\",…}"`: the id is digits and one dot.
            let Some(at) = find(msg, b"socket_id\\\":\\\"") else {
                return Incoming::Other;
            };
            let rest = &msg[at + 14..];
            let end = rest
                .iter()
                .position(|&b| !(b.is_ascii_digit() || b == b'.'))
                .unwrap_or(rest.len());
            return std::str::from_utf8(&rest[..end])
                .map_or(Incoming::Other, Incoming::Established);
        }
        Incoming::Other
    }

    /// The channel of room `room`.
    pub fn channel(prefix: &str, room: usize) -> String {
        format!("private-{prefix}{room}")
    }

    /// The `pusher:subscribe` of `channel` for `socket_id`, signed.
    pub fn subscribe(&self, socket_id: &str, channel: &str) -> Vec<u8> {
        let signature = auth::sign_channel(&self.secret, socket_id, channel, None);
        format!(
            r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}","auth":"{}:{signature}"}}}}"#,
            self.key
        )
        .into_bytes()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_messages_are_read() {
        let d = Dialect::new("k".into(), "s".into(), 0xab);
        let est = br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"12.34\",\"activity_timeout\":120}"}"#;
        assert_eq!(d.classify(est), Incoming::Established("12.34"));
        let sub = br#"{"event":"pusher_internal:subscription_succeeded","channel":"private-r0","data":"{}"}"#;
        assert_eq!(d.classify(sub), Incoming::Subscribed);
        let mut out = Vec::new();
        d.wrap(&mut out, "private-r0", b"0001....");
        assert_eq!(d.classify(&out), Incoming::Event(b"0001...."));
        assert_eq!(
            d.classify(br#"{"event":"pusher:error","data":{}}"#),
            Incoming::Other
        );
        let s = String::from_utf8(d.subscribe("1.2", "private-r0")).expect("utf-8");
        assert!(s.contains(r#""auth":"k:"#), "{s}");
    }

    #[test]
    fn an_event_of_another_run_is_not_ours() {
        let (this, earlier) = (
            Dialect::new("k".into(), "s".into(), 2),
            Dialect::new("k".into(), "s".into(), 1),
        );
        let mut out = Vec::new();
        earlier.wrap(&mut out, "private-cache-r0", b"0001....");
        assert_eq!(this.classify(&out), Incoming::Other);
        let mut longer = Vec::new();
        write::channel_event(&mut longer, "client-m000000021", "c", "0001", None);
        assert_eq!(this.classify(&longer), Incoming::Other);
    }
}
