//! Orders of the server API about connections (docs/api.md#disconnect, docs/api.md#subscribe):
//! the API request that makes one may run on any worker, while the connections it names live
//! on every worker. An order is posted here once; each worker applies the orders it has not
//! applied yet on its next tick (`worker::api`), so every matching connection is acted on
//! within one tick interval.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Orders kept at most; past it the oldest is dropped (a worker that has not ticked for
/// that many orders misses it).
const MAX_ORDERS: usize = 4096;

/// How long an order is kept: far beyond the longest tick interval (500 ms), so every worker
/// sees it.
const KEEP: Duration = Duration::from_secs(10);

/// Something to do to the connections of a user, or to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Every connection whose token's `sub` is this user (`""`: none, name a client).
    pub user: Box<str>,
    /// Only the connection with this client id (and that user, when one is named).
    pub client: Option<Box<str>>,
    /// What to do.
    pub act: Act,
}

/// What an [`Order`] does to each connection it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Close it with this WebSocket close code and reason.
    Disconnect {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: Box<str>,
    },
    /// Subscribe it (a pub/sub connection) to this channel.
    Subscribe(Box<str>),
    /// Unsubscribe it (a pub/sub connection) from this channel.
    Unsubscribe(Box<str>),
}

impl Order {
    /// Whether this order names the connection `client` whose token's `sub` is `user`.
    pub fn names(&self, client: Option<&str>, user: Option<&str>) -> bool {
        let user_matches = !self.user.is_empty() && user == Some(&*self.user);
        match &self.client {
            Some(id) => client == Some(&**id) && (self.user.is_empty() || user_matches),
            None => user_matches,
        }
    }
}

/// The orders every worker applies.
pub struct Orders {
    orders: Mutex<VecDeque<(u64, Instant, Order)>>,
    /// The newest order's number (0: none yet).
    last: AtomicU64,
    /// Per worker: the newest order it applied.
    applied: Box<[AtomicU64]>,
    /// Other nodes' messages on the API's bus room seen lost (orders, or node figures):
    /// published while a Redis link was down, they are not replayed.
    lost: AtomicU64,
}

impl Orders {
    /// No orders, for `workers` workers.
    pub fn new(workers: usize) -> Orders {
        Orders {
            orders: Mutex::new(VecDeque::new()),
            last: AtomicU64::new(0),
            applied: (0..workers.max(1)).map(|_| AtomicU64::new(0)).collect(),
            lost: AtomicU64::new(0),
        }
    }

    /// `missed` messages of another node on the API's bus room were lost (a sequence gap).
    pub fn count_lost(&self, missed: u64) {
        self.lost.fetch_add(missed, Ordering::Relaxed);
    }

    /// Other nodes' messages on the API's bus room seen lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Posts an order for every worker.
    pub fn post(&self, order: Order) {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while orders
            .front()
            .is_some_and(|o| orders.len() >= MAX_ORDERS || now.duration_since(o.1) > KEEP)
        {
            orders.pop_front();
        }
        let n = self.last.load(Ordering::Relaxed) + 1;
        orders.push_back((n, now, order));
        self.last.store(n, Ordering::Release);
    }

    /// The orders worker `worker` has not applied yet (marked applied now); none without
    /// taking the lock when there is nothing new, which is every tick but a few.
    pub fn take_new(&self, worker: usize) -> Vec<Order> {
        let Some(applied) = self.applied.get(worker) else {
            return Vec::new();
        };
        let seen = applied.load(Ordering::Relaxed);
        if self.last.load(Ordering::Acquire) == seen {
            return Vec::new();
        }
        let orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        let new: Vec<Order> = (orders.iter())
            .filter(|o| o.0 > seen)
            .map(|o| o.2.clone())
            .collect();
        applied.store(orders.back().map_or(seen, |o| o.0), Ordering::Relaxed);
        new
    }
}

/// An order (and a ban's end) as the JSON text other nodes read from the cluster bus
/// (docs/api.md#across-the-cluster).
pub fn encode(order: &Order, ban_until: Option<i64>) -> Vec<u8> {
    use ringcast_pubsub::envelope::write_str;
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"user\":");
    write_str(&mut out, &order.user);
    if let Some(c) = &order.client {
        out.extend_from_slice(b",\"client\":");
        write_str(&mut out, c);
    }
    match &order.act {
        Act::Disconnect { code, reason } => {
            out.extend_from_slice(b",\"act\":\"disconnect\",\"code\":");
            out.extend_from_slice(code.to_string().as_bytes());
            out.extend_from_slice(b",\"reason\":");
            write_str(&mut out, reason);
        }
        Act::Subscribe(c) | Act::Unsubscribe(c) => {
            let act = match &order.act {
                Act::Subscribe(_) => "subscribe",
                _ => "unsubscribe",
            };
            out.extend_from_slice(b",\"act\":");
            write_str(&mut out, act);
            out.extend_from_slice(b",\"channel\":");
            write_str(&mut out, c);
        }
    }
    if let Some(until) = ban_until {
        out.extend_from_slice(b",\"ban_until\":");
        out.extend_from_slice(until.to_string().as_bytes());
    }
    out.push(b'}');
    out
}

/// Reads what [`encode`] wrote (`None` for anything else).
pub fn decode(bytes: &[u8]) -> Option<(Order, Option<i64>)> {
    use simd_json::prelude::*;
    let mut copy = bytes.to_vec();
    let v = simd_json::to_borrowed_value(&mut copy).ok()?;
    let o = v.as_object()?;
    let text = |k: &str| o.get(k).and_then(|v| v.as_str());
    let act = match text("act")? {
        "disconnect" => Act::Disconnect {
            code: u16::try_from(o.get("code")?.as_u64()?).ok()?,
            reason: text("reason")?.into(),
        },
        "subscribe" => Act::Subscribe(text("channel")?.into()),
        "unsubscribe" => Act::Unsubscribe(text("channel")?.into()),
        _ => return None,
    };
    let order = Order {
        user: text("user")?.into(),
        client: text("client").map(Box::from),
        act,
    };
    Some((order, o.get("ban_until").and_then(|v| v.as_i64())))
}

/// Users banned until a time by the server API's `disconnect` with `ban_until`
/// (docs/api.md#disconnect): their new connections are refused with 401 until then.
#[derive(Default)]
pub struct Bans {
    users: Mutex<std::collections::HashMap<Box<str>, i64>>,
}

/// Users banned at once at most (expired bans are dropped first when it is reached).
pub const MAX_BANS: usize = 100_000;

impl Bans {
    /// Bans `user` until `until` (unix seconds); `false` when `MAX_BANS` live bans exist.
    pub fn ban(&self, user: &str, until: i64, now: i64) -> bool {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() >= MAX_BANS && !users.contains_key(user) {
            users.retain(|_, t| *t > now);
            if users.len() >= MAX_BANS {
                return false;
            }
        }
        let t = users.entry(user.into()).or_insert(until);
        *t = (*t).max(until);
        true
    }

    /// Whether `user` is banned at `now`; a lapsed ban is forgotten.
    pub fn banned(&self, user: &str, now: i64) -> bool {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        match users.get(user) {
            Some(&until) if until > now => true,
            Some(_) => {
                users.remove(user);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(user: &str) -> Order {
        Order {
            user: user.into(),
            client: None,
            act: Act::Subscribe("t".into()),
        }
    }

    #[test]
    fn an_order_names_a_user_s_connections_or_one_client() {
        let user = order("u");
        assert!(user.names(Some("c1"), Some("u")) && user.names(None, Some("u")));
        assert!(!user.names(Some("c1"), None) && !user.names(Some("c1"), Some("v")));
        let client = Order {
            client: Some("c1".into()),
            ..order("")
        };
        assert!(client.names(Some("c1"), None) && client.names(Some("c1"), Some("v")));
        assert!(!client.names(Some("c2"), None));
        let both = Order {
            client: Some("c1".into()),
            ..order("u")
        };
        assert!(both.names(Some("c1"), Some("u")) && !both.names(Some("c1"), Some("v")));
    }

    #[test]
    fn orders_cross_the_bus_as_json() {
        for (order, ban) in [
            (order("u\"1"), None),
            (
                Order {
                    client: Some("c".into()),
                    act: Act::Disconnect {
                        code: 4001,
                        reason: "bye".into(),
                    },
                    ..order("")
                },
                Some(99),
            ),
            (
                Order {
                    act: Act::Unsubscribe("t".into()),
                    ..order("v")
                },
                None,
            ),
        ] {
            assert_eq!(decode(&encode(&order, ban)), Some((order, ban)));
        }
        assert_eq!(decode(b"{}"), None);
    }

    #[test]
    fn a_ban_lasts_until_its_time() {
        let b = Bans::default();
        assert!(!b.banned("u", 100));
        assert!(b.ban("u", 200, 100));
        assert!(b.banned("u", 199) && !b.banned("v", 150));
        assert!(b.ban("u", 150, 100), "an earlier end does not shorten it");
        assert!(b.banned("u", 180));
        assert!(!b.banned("u", 200));
    }

    #[test]
    fn each_worker_takes_each_order_once() {
        let d = Orders::new(2);
        assert!(d.take_new(0).is_empty());
        d.post(order("a"));
        d.post(order("b"));
        assert_eq!(d.take_new(0), vec![order("a"), order("b")]);
        assert!(d.take_new(0).is_empty());
        d.post(order("c"));
        assert_eq!(d.take_new(1), vec![order("a"), order("b"), order("c")]);
        assert_eq!(d.take_new(0), vec![order("c")]);
    }
}
