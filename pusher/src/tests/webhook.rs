use serde_json::json;

use super::{doc_app, json};
use crate::auth;
use crate::socket_id::SocketId;
use crate::webhook::{self, Event};

#[test]
fn a_webhook_body_with_every_event_and_its_headers() {
    let events = [
        Event::ChannelOccupied {
            channel: "c".into(),
        },
        Event::ChannelVacated {
            channel: "c".into(),
        },
        Event::MemberAdded {
            channel: "presence-x".into(),
            user_id: "u1".into(),
        },
        Event::MemberRemoved {
            channel: "presence-x".into(),
            user_id: "u1".into(),
        },
        Event::ClientEvent {
            channel: "presence-x".into(),
            event: "client-typing".into(),
            data: "{\"a\":1}".into(),
            socket_id: SocketId::new(1, 2),
            user_id: Some("u1".into()),
        },
        Event::ClientEvent {
            channel: "private-y".into(),
            event: "client-e".into(),
            data: "x".into(),
            socket_id: SocketId::new(3, 4),
            user_id: None,
        },
        Event::CacheMiss {
            channel: "cache-c".into(),
        },
        Event::SubscriptionCount {
            channel: "c".into(),
            subscription_count: 5,
        },
    ];
    let mut body = Vec::new();
    webhook::body(&mut body, 1_327_078_148_132, &events);
    assert_eq!(
        json(&body),
        json!({"time_ms": 1_327_078_148_132_u64, "events": [
            {"name": "channel_occupied", "channel": "c"},
            {"name": "channel_vacated", "channel": "c"},
            {"name": "member_added", "channel": "presence-x", "user_id": "u1"},
            {"name": "member_removed", "channel": "presence-x", "user_id": "u1"},
            {"name": "client_event", "channel": "presence-x", "event": "client-typing", "data": "{\"a\":1}", "socket_id": "1.2", "user_id": "u1"},
            {"name": "client_event", "channel": "private-y", "event": "client-e", "data": "x", "socket_id": "3.4"},
            {"name": "cache_miss", "channel": "cache-c"},
            {"name": "subscription_count", "channel": "c", "subscription_count": 5}
        ]})
    );
    let app = doc_app();
    let [(k, key), (s, sig)] = webhook::headers(&app, &body);
    assert_eq!(
        (k, key.as_str(), s),
        ("X-Pusher-Key", "278d425bdf160c739803", "X-Pusher-Signature")
    );
    let text = String::from_utf8(body).expect("utf8");
    assert_eq!(sig, auth::hmac_hex(&app.secret, &[&text]));
    assert!(auth::hmac_matches(&app.secret, &[&text], &sig));
}
