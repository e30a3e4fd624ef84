//! `Worker`'s part of the server API (docs/api.md#disconnect): the disconnect orders any
//! worker's API connection posted, applied to this worker's connections on each tick.

use ringcast_protocol::CloseCode;

use super::Worker;

impl Worker {
    /// Closes this worker's connections that the new disconnect orders name.
    pub(super) fn apply_api_orders(&mut self) {
        let orders = self.ctx.shared.hub.disconnects.take_new(self.ctx.id);
        for order in orders {
            let targets: Vec<usize> = (self.conns.keys().into_iter())
                .filter(|&key| {
                    let c = &self.conns[key];
                    if !c.session.is_open() || c.life.is_dead() {
                        return false;
                    }
                    let user = c.session.user();
                    let client = c.session.client().map(|c| c.as_str());
                    let user_matches = user == Some(&*order.user);
                    match &order.client {
                        Some(id) => {
                            client == Some(&**id) && (order.user.is_empty() || user_matches)
                        }
                        None => !order.user.is_empty() && user_matches,
                    }
                })
                .collect();
            for key in targets {
                self.close_with(key, CloseCode(order.code), &order.reason);
            }
        }
    }
}
