//! Pusher's subscription counting (docs/pusher.md#subscription-count), for an app with
//! `subscription_count = true`: each change of a channel's subscription count (not a presence
//! channel's, whose members say more) is published into the channel as
//! `pusher_internal:subscription_count` with the count over every node
//! (`pusher::registry`), and the app's webhooks get a `subscription_count` event.

use ringcast_pusher::webhook::Event;
use ringcast_pusher::write;

use crate::pusher::registry::Registry;
use crate::webhooks::Webhooks;

/// The `pusher_internal:subscription_count` frame of `channel` (fan-out topic `topic`) as its
/// count stands now; emits the webhook.
pub(super) fn changed(
    registry: &Registry,
    webhooks: &Webhooks,
    app_id: &str,
    channel: &str,
    topic: &str,
) -> Vec<u8> {
    let n = registry.info(topic).map_or(0, |i| i.subscriptions);
    let mut out = Vec::with_capacity(96 + channel.len());
    write::subscription_count(&mut out, channel, n);
    let event = Event::SubscriptionCount {
        channel: channel.to_owned(),
        subscription_count: n,
    };
    webhooks.emit(app_id, event);
    out
}
