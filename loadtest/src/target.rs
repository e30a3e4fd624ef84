//! Server addresses: `ws://HOST:PORT/PATH` and `wss://` URLs (`--url`, repeatable) and which one each
//! connection uses.

use std::net::{SocketAddr, ToSocketAddrs};

/// One server (a node of a cluster, or the only server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// `Host` header value.
    pub host: String,
    /// Request path.
    pub path: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// `wss://`: TLS (its server name, for SNI and the certificate check, is `server_name`).
    pub tls: bool,
    /// The host without port or IPv6 brackets.
    pub server_name: String,
}

/// Parses and resolves `ws://HOST[:PORT][/PATH]` or `wss://...` (port 80 or 443 and path `/`
/// by default).
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (rest, tls) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        _ => return Err(format!("{url}: only ws:// and wss:// URLs are supported")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let has_port = authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    let with_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let host = if has_port {
        &authority[..authority.rfind(':').unwrap_or(authority.len())]
    } else {
        authority
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    Ok(Target {
        url: url.to_owned(),
        host: authority.to_owned(),
        path: path.to_owned(),
        addr,
        tls,
        server_name: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    })
}

/// The target of connection `local` on thread `thread` of `threads`, out of `targets`.
///
/// Scenarios hand connections to threads round-robin (connection `i` to thread `i % threads`,
/// see `scenario::thread_of`), so `local * threads + thread` is the connection's place in the
/// scenario's own order; spreading that round-robin over the targets puts consecutive members of
/// a room or topic on different nodes.
pub fn target_of(local: usize, thread: usize, threads: usize, targets: usize) -> usize {
    (local * threads.max(1) + thread) % targets.max(1)
}

/// Which server each publisher's connection uses, so that a receiver can tell a copy that
/// stayed on its own node from one that crossed nodes (through the cluster's bus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherNodes {
    target: Vec<u32>,
}

impl PublisherNodes {
    /// From where each publisher's connection sits: `places[id]` is (thread, thread-local
    /// connection index) of publisher `id`. `None` with a single server (nothing to split).
    pub fn new(places: &[(usize, usize)], threads: usize, targets: usize) -> Option<Self> {
        (targets > 1).then(|| Self {
            target: places
                .iter()
                .map(|&(thread, local)| target_of(local, thread, threads, targets) as u32)
                .collect(),
        })
    }

    /// Whether a copy from `publisher` received on a connection to server `receiver` stayed on
    /// one node (`Some(true)`) or crossed nodes (`Some(false)`); `None` for an unknown publisher.
    pub fn same_node(&self, publisher: usize, receiver: usize) -> Option<bool> {
        self.target.get(publisher).map(|&t| t as usize == receiver)
    }
}

/// Test support: asserts that `nodes` puts every publisher on the server the driver connects it
/// to; `pubs` lists (thread, thread-local connection, publisher id). Returns how many it checked.
#[cfg(test)]
pub fn assert_matches_driver(
    nodes: &PublisherNodes,
    pubs: &[(usize, usize, usize)],
    threads: usize,
    servers: usize,
) -> usize {
    for &(t, c, id) in pubs {
        let server = target_of(c, t, threads, servers);
        for receiver in 0..servers {
            assert_eq!(
                nodes.same_node(id, receiver),
                Some(receiver == server),
                "pub {id}"
            );
        }
    }
    pubs.len()
}

/// [`PublisherNodes::same_node`] when there is a map (several servers), else `None`.
pub fn same_node(map: Option<&PublisherNodes>, publisher: usize, receiver: usize) -> Option<bool> {
    map.and_then(|m| m.same_node(publisher, receiver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:9001/x").expect("valid");
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:9001", "/x"));
        assert_eq!(t.addr.port(), 9001);
        assert_eq!(parse_url("ws://127.0.0.1").expect("valid").addr.port(), 80);
        assert!(!t.tls);
        let t = parse_url("wss://localhost:8443/chat").expect("valid");
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.server_name.as_str()),
            ("localhost:8443", "localhost")
        );
        assert_eq!(
            parse_url("wss://127.0.0.1").expect("valid").addr.port(),
            443
        );
        let t = parse_url("wss://[::1]:9/").expect("valid");
        assert_eq!(t.server_name, "::1");
        assert!(parse_url("http://127.0.0.1/").is_err());
    }

    #[test]
    fn round_robin_over_targets() {
        // 2 threads, 3 targets: the scenario's connections 0, 1, 2, ... go to 0, 1, 2, 0, ...
        let mut seen = Vec::new();
        for i in 0..6 {
            let (thread, local) = (i % 2, i / 2);
            seen.push(target_of(local, thread, 2, 3));
        }
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
        assert_eq!(target_of(5, 1, 4, 1), 0);
    }

    #[test]
    fn publisher_nodes() {
        // Publishers 0..3 sit at (thread, local) below; 2 threads over 3 servers.
        let places = [(0, 0), (1, 0), (0, 1), (1, 2)];
        assert_eq!(PublisherNodes::new(&places, 2, 1), None);
        let m = PublisherNodes::new(&places, 2, 3).expect("3 servers");
        // Servers: (0,0) -> 0, (1,0) -> 1, (0,1) -> 2, (1,2) -> 5 % 3 = 2.
        let want = [0, 1, 2, 2];
        for (id, &t) in want.iter().enumerate() {
            for receiver in 0..3 {
                assert_eq!(
                    m.same_node(id, receiver),
                    Some(receiver == t),
                    "pub {id} at {receiver}"
                );
            }
        }
        assert_eq!(m.same_node(4, 0), None);
        assert_eq!(same_node(None, 0, 0), None);
        assert_eq!(same_node(Some(&m), 3, 2), Some(true));
    }
}
