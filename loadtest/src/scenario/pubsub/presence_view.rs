//! Per subscriber that asked for presence, a [`PresenceView`]: the snapshot's place and the
//! join / leave events (docs/pubsub.md#presence).

use std::collections::HashSet;

use super::check::PubsubCounters;

/// What one subscriber that asked for presence knows of its topic's members, and the checks
/// of docs/pubsub.md#order-after-a-subscribe and docs/pubsub.md#presence: after `subscribed`,
/// the snapshot comes before anything else of the topic; then each member joins and leaves
/// once.
#[derive(Debug, Clone, Default)]
pub struct PresenceView {
    awaiting: bool,
    /// The snapshot listed the members (not a count only).
    known: bool,
    members: HashSet<String>,
}

impl PresenceView {
    /// A `subscribed` arrived: the snapshot is next.
    pub fn on_subscribed(&mut self) {
        self.awaiting = true;
        self.known = false;
        self.members.clear();
    }

    /// The connection was dropped: its view is gone.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// A snapshot: `clients` is `None` for a count-only snapshot.
    pub fn on_snapshot(&mut self, clients: Option<Vec<String>>, c: &mut PubsubCounters) {
        if !std::mem::take(&mut self.awaiting) {
            c.presence_order_violations += 1;
            return;
        }
        c.presence_snapshots += 1;
        self.known = clients.is_some();
        self.members = clients.unwrap_or_default().into_iter().collect();
    }

    /// A message of the topic (a violation while the snapshot is still owed).
    pub fn on_message(&mut self, c: &mut PubsubCounters) {
        if self.awaiting {
            c.presence_order_violations += 1;
            // Counted once per subscribe.
            self.awaiting = false;
        }
    }

    /// A `join` (`true`) or `leave` of `client`.
    pub fn on_event(&mut self, join: bool, client: &str, c: &mut PubsubCounters) {
        c.presence_events += 1;
        if self.awaiting {
            c.presence_order_violations += 1;
            self.awaiting = false;
            return;
        }
        if !self.known {
            return;
        }
        let fine = if join {
            self.members.insert(client.to_owned())
        } else {
            self.members.remove(client)
        };
        if !fine {
            c.presence_anomalies += 1;
        }
    }

    /// The end of the run: a snapshot still owed is a violation.
    pub fn close(&mut self, c: &mut PubsubCounters) {
        if std::mem::take(&mut self.awaiting) {
            c.presence_order_violations += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_snapshot_first_then_each_change_once() {
        let mut c = PubsubCounters::default();
        let mut v = PresenceView::default();
        v.on_subscribed();
        v.on_snapshot(Some(vec!["a".into(), "me".into()]), &mut c);
        v.on_event(true, "b", &mut c);
        v.on_message(&mut c);
        v.on_event(false, "a", &mut c);
        assert_eq!((c.presence_snapshots, c.presence_events), (1, 2));
        assert_eq!((c.presence_order_violations, c.presence_anomalies), (0, 0));
        v.on_event(false, "a", &mut c);
        v.on_event(true, "b", &mut c);
        assert_eq!(c.presence_anomalies, 2);
        // A message before the snapshot, and a snapshot never sent.
        v.on_subscribed();
        v.on_message(&mut c);
        v.on_snapshot(None, &mut c);
        v.on_subscribed();
        v.close(&mut c);
        assert_eq!(c.presence_order_violations, 3);
    }
}
