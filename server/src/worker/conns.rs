//! The worker's connection table: a slab of [`Conn`]s whose slots carry a generation, so a late
//! completion for an earlier user of a slot is recognised and ignored, and the list of
//! connections with bytes to flush this turn.

use std::net::IpAddr;
use std::os::fd::RawFd;

use slab::Slab;

use crate::config::Config;
use crate::conn::lifecycle::Lifecycle;
use crate::conn::outq::OutQueue;
use crate::fanout::deliver::Outboxes;
use crate::limits::{LINGER_MS, OVER_LIMIT_HEAD_MS};
use crate::session::Session;
use crate::tls::TlsConn;

/// One client connection.
pub struct Conn {
    /// The socket.
    pub fd: RawFd,
    /// Distinguishes this connection from earlier users of the same slab slot (24 bits).
    pub generation: u32,
    /// The client's address (for `--max-connections-per-ip`).
    pub ip: IpAddr,
    /// Operations in flight and teardown stage.
    pub life: Lifecycle,
    /// What the connection is doing.
    pub session: Session,
    /// Bytes queued for the client.
    pub out: OutQueue,
    /// Accepted on a TLS listener: its TLS state, between the ring and `session`/`out`
    /// (docs/running.md#tls). None: plain, bytes go to the session and WRITEV as they are.
    pub tls: Option<Box<TlsConn>>,
    /// In this turn's flush list.
    dirty: bool,
    /// Coarse time (ms) of the accept: the handshake deadline counts from here.
    pub accepted_ms: u64,
    /// Coarse time (ms) of the last byte received, or of accept.
    pub last_rx_ms: u64,
    /// Coarse time (ms) the connection's last bytes were queued.
    pub closing_since_ms: u64,
    /// A keepalive ping is outstanding.
    pub ping_outstanding: bool,
    /// The session's decoder held this many bytes after the last read (counted in
    /// `Shared::pending`).
    pub pending: usize,
}

/// What a connection may do now: the one answer that combines what it speaks (its
/// `Session`) with where its socket is in the teardown (its `Lifecycle`), so no caller
/// combines the two by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Reading its HTTP request head.
    Handshake,
    /// Upgraded (room or pub/sub) and not closing: WebSocket traffic flows both ways, and
    /// keepalive (`--ping-interval`, `--idle-timeout`) applies.
    Open,
    /// A server API connection (HTTP/1.1 keep-alive, docs/api.md): no WebSocket keepalive;
    /// cut when idle past `--idle-timeout` or a request is still arriving past
    /// `--handshake-timeout`.
    Api,
    /// Its last bytes are queued (a Close or an HTTP answer): what it still sends is read and
    /// dropped, and it is torn down after the linger time.
    Closing,
    /// Torn down: nothing is read, queued or sent any more; the slot waits for its last
    /// completions.
    Dead,
}

impl Conn {
    /// What the connection may do now.
    pub fn state(&self) -> ConnState {
        match &self.session {
            _ if self.life.is_dead() => ConnState::Dead,
            Session::Handshake(_) => ConnState::Handshake,
            Session::Room(_) | Session::PubSub(_) | Session::Pusher(_) => ConnState::Open,
            Session::Api(_) | Session::PusherApi(_) => ConnState::Api,
            Session::Closing => ConnState::Closing,
        }
    }
}

/// Timeouts of one tick (see [`Conns::expired`]).
#[derive(Default)]
pub struct Expired {
    /// Connections to tear down (handshake timeout, linger over, drain over).
    pub abort: Vec<usize>,
    /// Handshakes accepted past a connection limit whose head is late (their 503 now).
    pub refuse: Vec<usize>,
    /// Open connections silent past `--idle-timeout` (Close 1008).
    pub idle: Vec<usize>,
    /// Open connections silent past `--ping-interval` (ping them).
    pub ping: Vec<usize>,
}

/// Timeouts in milliseconds, for [`Conns::expired`].
pub struct Timeouts {
    /// `--handshake-timeout`.
    pub handshake: u64,
    /// `--ping-interval`.
    pub ping: u64,
    /// `--idle-timeout`.
    pub idle: u64,
    /// The drain deadline has passed: every connection is cut.
    pub drain_over: bool,
    /// How long a closing connection may wait for the client's FIN: `LINGER_MS`, or until the
    /// drain deadline while draining (so `--drain-timeout` is honoured, issue 14 row 8).
    pub linger: u64,
}

impl Timeouts {
    /// The timeouts `config` sets.
    pub fn new(config: &Config, draining: bool, drain_over: bool) -> Timeouts {
        Timeouts {
            linger: if draining { u64::MAX } else { LINGER_MS },
            handshake: config.handshake_timeout().as_millis() as u64,
            ping: config.ping_interval().as_millis() as u64,
            idle: config.idle_timeout().as_millis() as u64,
            drain_over,
        }
    }
}

/// All connections of a worker.
pub struct Conns {
    slab: Slab<Conn>,
    next_generation: u32,
    dirty: Vec<usize>,
}

impl Default for Conns {
    fn default() -> Self {
        Conns {
            slab: Slab::new(),
            next_generation: 1,
            dirty: Vec::new(),
        }
    }
}

impl Conns {
    /// Adds a freshly accepted connection; returns its slab key.
    pub fn insert(&mut self, fd: RawFd, ip: IpAddr, now_ms: u64) -> usize {
        let generation = self.next_generation;
        self.next_generation = (self.next_generation + 1) & 0xff_ffff;
        self.slab.insert(Conn {
            fd,
            generation,
            ip,
            life: Lifecycle::new(),
            session: Session::default(),
            out: OutQueue::new(),
            tls: None,
            dirty: false,
            accepted_ms: now_ms,
            last_rx_ms: now_ms,
            closing_since_ms: 0,
            ping_outstanding: false,
            pending: 0,
        })
    }

    /// The connection in slot `key` if it is still the one `generation` names.
    pub fn live(&mut self, key: usize, generation: u32) -> Option<&mut Conn> {
        self.slab
            .get_mut(key)
            .filter(|c| c.generation == generation)
    }

    /// The connection in slot `key`.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    /// Frees slot `key` (only once its lifecycle says `may_free_slot`).
    pub fn remove(&mut self, key: usize) -> Conn {
        let conn = self.slab.remove(key);
        debug_assert!(conn.life.may_free_slot(), "slot freed too early");
        conn
    }

    /// No connection left.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Every slab key.
    pub fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(k, _)| k).collect()
    }

    /// Adds `key` to this turn's flush list.
    pub fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Takes this turn's flush list; each connection must then leave it through
    /// [`Conns::flushing`].
    pub fn take_dirty(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.dirty)
    }

    /// The connection `key` of a list taken by [`Conns::take_dirty`], out of the flush list.
    pub fn flushing(&mut self, key: usize) -> Option<&mut Conn> {
        let conn = self.slab.get_mut(key)?;
        conn.dirty = false;
        Some(conn)
    }

    /// The live connection whose decoder holds the most bytes, if any holds some.
    pub fn largest_pending(&self) -> Option<usize> {
        (self.slab.iter())
            .filter(|(_, c)| c.pending > 0 && !c.life.is_dead())
            .max_by_key(|(_, c)| c.pending)
            .map(|(k, _)| k)
    }

    /// Connections whose time is up at `now` (coarse milliseconds).
    pub fn expired(&self, now: u64, t: &Timeouts) -> Expired {
        let mut out = Expired::default();
        for (key, c) in self.slab.iter() {
            let quiet = now.saturating_sub(c.last_rx_ms);
            match (c.state(), &c.session) {
                (ConnState::Dead, _) => {}
                _ if t.drain_over => out.abort.push(key),
                // From the accept: a trickle of bytes does not extend it (issue 14 row 4).
                (ConnState::Handshake, _) if now.saturating_sub(c.accepted_ms) >= t.handshake => {
                    out.abort.push(key)
                }
                // Past a connection limit, a client that sends no head in time is refused
                // without it: a silent flood must not hold descriptors (issue 14 row 9).
                (ConnState::Handshake, Session::Handshake(h))
                    if h.limit().is_some()
                        && now.saturating_sub(c.accepted_ms) >= OVER_LIMIT_HEAD_MS =>
                {
                    out.refuse.push(key)
                }
                (ConnState::Closing, _) if now.saturating_sub(c.closing_since_ms) >= t.linger => {
                    out.abort.push(key)
                }
                // The server API (docs/api.md#limits): a quiet keep-alive connection, or a
                // request still arriving after --handshake-timeout (a trickled body), is cut.
                (ConnState::Api, Session::Api(a))
                    if quiet >= t.idle
                        || a.stalled(std::time::Duration::from_millis(t.handshake)) =>
                {
                    out.abort.push(key)
                }
                (ConnState::Api, Session::PusherApi(a))
                    if quiet >= t.idle
                        || a.stalled(std::time::Duration::from_millis(t.handshake)) =>
                {
                    out.abort.push(key)
                }
                // Keepalive applies to every upgraded client, whatever its mode (room or
                // pub/sub): a client whose network vanished must not hold its slot,
                // subscriptions and presence entry forever.
                (ConnState::Open, _) if quiet >= t.idle => out.idle.push(key),
                (ConnState::Open, _) if quiet >= t.ping && !c.ping_outstanding => {
                    out.ping.push(key)
                }
                _ => {}
            }
        }
        out
    }
}

impl std::ops::Index<usize> for Conns {
    type Output = Conn;

    fn index(&self, key: usize) -> &Conn {
        &self.slab[key]
    }
}

impl std::ops::IndexMut<usize> for Conns {
    fn index_mut(&mut self, key: usize) -> &mut Conn {
        &mut self.slab[key]
    }
}

impl Outboxes for Conns {
    fn outbox(&mut self, key: usize) -> &mut OutQueue {
        let conn = &mut self.slab[key];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
        &mut conn.out
    }
}
