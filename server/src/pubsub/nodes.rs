//! The nodes of a cluster as the server API's `info` lists them (docs/api.md#info): every node
//! started with an API key tells the others its figures about once a second
//! ([`BEAT_EVERY_MS`]) on the API's bus room, and a node is listed while its last figures are
//! younger than [`UP_FOR_MS`]. Redis knows no list of nodes, and the bus carries no figures
//! otherwise, so this is the one place they are kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ringcast_pubsub::envelope::{write_str, write_u64};

/// How often a node publishes its figures.
pub const BEAT_EVERY_MS: u64 = 1000;

/// A node whose figures are older than this is not listed: three beats missed (a node that
/// stopped, or is cut off from Redis).
pub const UP_FOR_MS: u64 = 3 * BEAT_EVERY_MS + 500;

/// More nodes than any cluster has: figures from more are ignored (a bound, not a limit).
const MAX_NODES: usize = 1024;

/// One node's figures, as `info` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `--node-id`.
    pub uid: String,
    /// Its version.
    pub version: String,
    /// Open connections (API connections included).
    pub num_clients: u64,
    /// Memberships (pub/sub subscriptions and room-mode members).
    pub num_subs: u64,
    /// Channels with members.
    pub num_channels: u64,
    /// Seconds since it started.
    pub uptime: u64,
}

/// The other nodes' latest figures, and when this node last sent its own.
pub struct Nodes {
    start: Instant,
    last_beat: AtomicU64,
    seen: Mutex<HashMap<String, (NodeInfo, u64)>>,
}

impl Default for Nodes {
    fn default() -> Nodes {
        Nodes {
            start: Instant::now(),
            last_beat: AtomicU64::new(0),
            seen: Mutex::default(),
        }
    }
}

impl Nodes {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether this node's figures are due (true for one caller per [`BEAT_EVERY_MS`], any
    /// worker).
    pub fn beat_due(&self) -> bool {
        let now = self.now_ms() + BEAT_EVERY_MS;
        let last = self.last_beat.load(Ordering::Relaxed);
        now >= last + BEAT_EVERY_MS
            && (self.last_beat)
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Another node's figures arrived.
    pub fn heard(&self, info: NodeInfo) {
        let now = self.now_ms();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, (_, at)| now.saturating_sub(*at) < UP_FOR_MS);
        if seen.len() < MAX_NODES || seen.contains_key(&info.uid) {
            seen.insert(info.uid.clone(), (info, now));
        }
    }

    /// The other nodes heard from lately, except `own` (this node's id), by id.
    pub fn up(&self, own: &str) -> Vec<NodeInfo> {
        let now = self.now_ms();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut up: Vec<NodeInfo> = (seen.values())
            .filter(|(i, at)| now.saturating_sub(*at) < UP_FOR_MS && i.uid != own)
            .map(|(i, _)| i.clone())
            .collect();
        up.sort_by(|a, b| a.uid.cmp(&b.uid));
        up
    }
}

/// `info`'s object for one node: `{"uid":…,"name":…,"version":…,"num_clients":…,…}`; also what
/// a node publishes, with `"act":"node"` in front so no order reads it as its own.
pub fn write(out: &mut Vec<u8>, info: &NodeInfo, beat: bool) {
    out.push(b'{');
    if beat {
        out.extend_from_slice(b"\"act\":\"node\",");
    }
    out.extend_from_slice(b"\"uid\":");
    write_str(out, &info.uid);
    out.extend_from_slice(b",\"name\":");
    write_str(out, &info.uid);
    out.extend_from_slice(b",\"version\":");
    write_str(out, &info.version);
    for (name, n) in [
        ("num_clients", info.num_clients),
        ("num_subs", info.num_subs),
        ("num_channels", info.num_channels),
        ("uptime", info.uptime),
    ] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        write_u64(out, n);
    }
    out.push(b'}');
}

/// Reads a node's figures that [`write`] wrote with `beat` (`None` for anything else).
pub fn decode(bytes: &[u8]) -> Option<NodeInfo> {
    use simd_json::prelude::*;
    let mut copy = bytes.to_vec();
    let v = simd_json::to_borrowed_value(&mut copy).ok()?;
    let o = v.as_object()?;
    if o.get("act")?.as_str()? != "node" {
        return None;
    }
    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(String::from);
    let num = |k: &str| o.get(k).and_then(|v| v.as_u64());
    Some(NodeInfo {
        uid: text("uid")?,
        version: text("version")?,
        num_clients: num("num_clients")?,
        num_subs: num("num_subs")?,
        num_channels: num("num_channels")?,
        uptime: num("uptime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(uid: &str) -> NodeInfo {
        NodeInfo {
            uid: uid.into(),
            version: "0.1.0".into(),
            num_clients: 3,
            num_subs: 2,
            num_channels: 1,
            uptime: 9,
        }
    }

    #[test]
    fn figures_travel_and_are_listed_but_not_our_own() {
        let mut out = Vec::new();
        write(&mut out, &info("b"), true);
        let back = decode(&out).expect("decoded");
        assert_eq!(back, info("b"));
        let mut plain = Vec::new();
        write(&mut plain, &info("b"), false);
        assert_eq!(decode(&plain), None, "an info object is not a beat");
        let nodes = Nodes::default();
        nodes.heard(back);
        nodes.heard(info("a"));
        let up: Vec<String> = nodes.up("a").into_iter().map(|i| i.uid).collect();
        assert_eq!(up, ["b"]);
    }

    #[test]
    fn one_beat_per_period() {
        let nodes = Nodes::default();
        assert!(nodes.beat_due());
        assert!(!nodes.beat_due());
    }
}
