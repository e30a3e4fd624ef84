//! Server addresses: `ws://HOST:PORT/PATH` URLs (`--url`, repeatable) and which one each
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
}

/// Parses and resolves `ws://HOST[:PORT][/PATH]` (port 80 and path `/` by default).
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:9001/x").expect("valid");
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:9001", "/x"));
        assert_eq!(t.addr.port(), 9001);
        assert_eq!(parse_url("ws://127.0.0.1").expect("valid").addr.port(), 80);
        assert!(parse_url("wss://127.0.0.1/").is_err());
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
}
