//! `Worker`'s part of the server API (docs/api.md#disconnect, docs/api.md#subscribe): the
//! orders any worker's API connection posted, applied to this worker's connections on each
//! tick.

use std::os::fd::AsRawFd;

use std::sync::atomic::Ordering::Relaxed;

use ringcast_cluster::PresenceMember;
use ringcast_protocol::CloseCode;
use ringcast_pubsub::auth::LEEWAY_SECS;

use crate::pubsub::nodes;
use crate::pubsub::orders::Act;
use crate::session::Session;

use super::Worker;
use super::conns::ConnState;

impl Worker {
    /// Gives this worker its share of `--api-listen` (docs/api.md#listeners): connections
    /// accepted there speak only the server API. Call before [`Worker::start`].
    pub fn set_api_listener(&mut self, listener: socket2::Socket) {
        self.accepting.api = Some(listener);
    }

    /// Arms the multishot accept on the server API listener, if there is one.
    pub(super) fn arm_api_accept(&mut self) {
        if let Some(listener) = &self.accepting.api {
            self.sq.accept_api(listener.as_raw_fd());
        }
    }

    /// On each tick: the server API's new orders, and the connections whose token expired.
    pub(super) fn api_tick(&mut self) {
        self.apply_api_orders();
        self.close_expired();
        self.beat();
    }

    /// In a cluster, this node's figures for the other nodes' `info`, about once a second
    /// (whichever worker ticks first; docs/api.md#info).
    fn beat(&mut self) {
        let shared = &self.ctx.shared;
        let (Some(bus), Some(_)) = (&shared.cluster, &shared.config.api) else {
            return;
        };
        if shared.hub.nodes.beat_due() {
            let mut out = Vec::with_capacity(160);
            nodes::write(&mut out, &shared.node_info(), true);
            bus.publish_order(out);
        }
    }

    /// Closes the connections whose token's `exp` plus the leeway has passed
    /// (docs/tokens.md#expiry): within one tick of it.
    fn close_expired(&mut self) {
        if self.ctx.shared.config.auth.is_none() {
            return;
        }
        // In milliseconds, so the close comes within a tick of `exp` + leeway, not a second later.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let over = |exp: i64| now_ms > exp.saturating_add(LEEWAY_SECS).saturating_mul(1000);
        let expired: Vec<usize> = (self.conns.keys().into_iter())
            .filter(|&key| {
                let c = &self.conns[key];
                c.state() == ConnState::Open && c.session.expires().is_some_and(over)
            })
            .collect();
        for key in expired {
            self.ctx.metrics().token_expiries.fetch_add(1, Relaxed);
            self.close_with(key, CloseCode::POLICY, "token expired");
        }
    }

    /// Applies the new orders of the server API to the connections they name.
    fn apply_api_orders(&mut self) {
        let orders = self.ctx.shared.hub.orders.take_new(self.ctx.id);
        for order in orders {
            let targets: Vec<usize> = (self.conns.keys().into_iter())
                .filter(|&key| {
                    let c = &self.conns[key];
                    let client = c.session.client().map(|c| c.as_str());
                    c.state() == ConnState::Open && order.names(client, c.session.user())
                })
                .collect();
            for key in targets {
                match &order.act {
                    Act::Disconnect { code, reason } => {
                        self.close_with(key, CloseCode(*code), reason);
                    }
                    Act::Subscribe(channel) => self.server_request(key, channel, true),
                    Act::Unsubscribe(channel) => self.server_request(key, channel, false),
                }
            }
        }
    }

    /// Every node's members for a server API `presence` / `presence_stats` call that
    /// connection `key` asked the cluster (if it is still that connection): its held answer is
    /// filled.
    pub(super) fn on_api_presence(
        &mut self,
        key: usize,
        generation: u32,
        token: u64,
        members: Option<Vec<PresenceMember>>,
    ) {
        match self.conns.live(key, generation) {
            Some(conn) if conn.state() == ConnState::Api => {}
            _ => return,
        }
        self.with_session(key, |session, sink| {
            if let Session::Api(a) = session {
                a.presence_answer(token, members, sink);
            }
        });
    }

    /// A subscribe (or unsubscribe) of `channel` for pub/sub connection `key`, handled as its
    /// own request would be, with `"id":null` in the reply.
    fn server_request(&mut self, key: usize, channel: &str, subscribe: bool) {
        self.with_session(key, |session, sink| {
            // A room-mode member is in one room for its life.
            if let Session::PubSub(p) = session {
                p.server_request(channel, subscribe, sink);
            }
        });
    }
}
