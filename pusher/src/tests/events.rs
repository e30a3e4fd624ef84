use serde_json::json;

use super::{inner, json};
use crate::channel::{Channel, ChannelError, Kind};
use crate::error::ErrorCode;
use crate::json::Dom;
use crate::message::{ClientMessage, MessageError, Parser, Subscribe};
use crate::presence::{self, Joined, Left, MemberData, PresenceError, Roster};
use crate::socket_id::SocketId;
use crate::write::{self, Member};

fn parse(v: serde_json::Value) -> Result<ClientMessage, MessageError> {
    Parser::new().parse(v.to_string().as_bytes())
}

#[test]
fn connection_established_is_double_encoded_with_socket_id_and_activity_timeout() {
    let mut out = Vec::new();
    write::connection_established(&mut out, SocketId::new(123, 456), 120);
    let v = json(&out);
    assert_eq!(v["event"], "pusher:connection_established");
    assert_eq!(
        inner(&v),
        json!({"socket_id": "123.456", "activity_timeout": 120})
    );
}

#[test]
fn socket_ids_are_two_decimal_integers() {
    let id = SocketId::new(u64::MAX, 0);
    assert_eq!(id.to_string(), "18446744073709551615.0");
    assert_eq!(
        SocketId::new(u64::MAX, u64::MAX).to_string().len(),
        SocketId::MAX_LEN
    );
    assert_eq!(SocketId::parse("18446744073709551615.0"), Some(id));
    for bad in [
        "",
        "1",
        "1.",
        ".1",
        "1.2.3",
        "+1.2",
        "-1.2",
        "1.a",
        "18446744073709551616.0",
        " 1.2",
    ] {
        assert_eq!(SocketId::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn ping_pong_round_trip() {
    assert_eq!(
        parse(json!({"event": "pusher:ping", "data": {}})),
        Ok(ClientMessage::Ping)
    );
    assert_eq!(
        parse(json!({"event": "pusher:pong"})),
        Ok(ClientMessage::Pong)
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    write::pong(&mut a);
    write::ping(&mut b);
    assert_eq!(json(&a), json!({"event": "pusher:pong", "data": {}}));
    assert_eq!(
        Parser::new().parse(&b),
        Ok(ClientMessage::Ping),
        "our ping is a ping"
    );
}

#[test]
fn subscribe_unsubscribe_and_signin_parse_with_object_or_double_encoded_data() {
    let doc = json!({
        "event": "pusher:subscribe",
        "data": {
            "channel": "presence-example-channel",
            "auth": "<APP_KEY>:<server_generated_signature>",
            "channel_data": "{ \"user_id\": \"<unique_user_id>\", \"user_info\": { \"name\": \"Phil Leggetter\" } }"
        }
    });
    let want = ClientMessage::Subscribe(Subscribe {
        channel: "presence-example-channel".into(),
        auth: Some("<APP_KEY>:<server_generated_signature>".into()),
        channel_data: Some(doc["data"]["channel_data"].as_str().expect("str").into()),
    });
    assert_eq!(parse(doc.clone()), Ok(want.clone()));
    let encoded = json!({"event": "pusher:subscribe", "data": doc["data"].to_string()});
    assert_eq!(parse(encoded), Ok(want));
    assert_eq!(
        parse(json!({"event": "pusher:subscribe", "data": {"channel": "c", "auth": null}})),
        Ok(ClientMessage::Subscribe(Subscribe {
            channel: "c".into(),
            ..Subscribe::default()
        }))
    );
    assert_eq!(
        parse(json!({"event": "pusher:unsubscribe", "data": {"channel": "my-channel"}})),
        Ok(ClientMessage::Unsubscribe {
            channel: "my-channel".into()
        })
    );
    assert_eq!(
        parse(
            json!({"event": "pusher:signin", "data": {"auth": "k::user::s", "user_data": "{\"id\":\"1\"}"}})
        ),
        Ok(ClientMessage::Signin {
            auth: "k::user::s".into(),
            user_data: "{\"id\":\"1\"}".into()
        })
    );
}

#[test]
fn client_events_carry_data_as_the_outgoing_string() {
    let object =
        parse(json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "ann"}}));
    assert_eq!(
        object,
        Ok(ClientMessage::ClientEvent {
            event: "client-typing".into(),
            channel: "private-chat".into(),
            data: "{\"who\":\"ann\"}".into()
        })
    );
    let Ok(ClientMessage::ClientEvent {
        event,
        channel,
        data,
    }) =
        parse(json!({"event": "client-x", "channel": "presence-room", "data": "plain \"text\"\n"}))
    else {
        panic!("client event");
    };
    assert_eq!(data, "plain \"text\"\n");
    // Round trip: written as a channel event, it reads back the same, with the sender's id.
    let mut out = Vec::new();
    write::channel_event(&mut out, &event, &channel, &data, Some("u1"));
    let v = json(&out);
    assert_eq!(
        v,
        json!({"event": "client-x", "channel": "presence-room", "data": "plain \"text\"\n", "user_id": "u1"})
    );
    let mut out = Vec::new();
    write::channel_event(
        &mut out,
        "client-typing",
        "private-chat",
        "{\"who\":\"ann\"}",
        None,
    );
    assert_eq!(inner(&json(&out)), json!({"who": "ann"}));
    assert!(json(&out).get("user_id").is_none());
}

#[test]
fn malformed_messages_are_refused_without_panicking() {
    let mut p = Parser::new();
    let cases: [(&[u8], MessageError); 10] = [
        (b"", MessageError::BadJson),
        (b"not json", MessageError::BadJson),
        (b"[1,2]", MessageError::BadJson),
        (b"{\"event\":1}", MessageError::NoEvent),
        (b"{\"data\":{}}", MessageError::NoEvent),
        (
            b"{\"event\":\"pusher:subscribe\"}",
            MessageError::BadField {
                event: "pusher:subscribe",
                field: "data",
            },
        ),
        (
            b"{\"event\":\"pusher:subscribe\",\"data\":{}}",
            MessageError::BadField {
                event: "pusher:subscribe",
                field: "channel",
            },
        ),
        (
            b"{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":5}}",
            MessageError::BadField {
                event: "pusher:subscribe",
                field: "channel",
            },
        ),
        (
            b"{\"event\":\"pusher:subscribe\",\"data\":\"{not json\"}",
            MessageError::BadField {
                event: "pusher:subscribe",
                field: "data",
            },
        ),
        (
            b"{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"a\"}}",
            MessageError::BadField {
                event: "pusher:signin",
                field: "user_data",
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            p.parse(input),
            Err(want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        p.parse(b"{\"event\":\"my-event\",\"channel\":\"c\",\"data\":{}}"),
        Err(MessageError::NotClientEvent("my-event".into()))
    );
    assert_eq!(
        p.parse(b"{\"event\":\"pusher_internal:member_added\",\"data\":\"{}\"}"),
        Err(MessageError::NotClientEvent(
            "pusher_internal:member_added".into()
        ))
    );
    assert_eq!(
        p.parse(b"{\"event\":\"client-x\",\"data\":{}}"),
        Err(MessageError::ClientEventFields("client-x".into()))
    );
    assert_eq!(
        p.parse(b"{\"event\":\"pusher:unknown\"}"),
        Ok(ClientMessage::OtherSystem {
            event: "pusher:unknown".into()
        })
    );
    // Invalid UTF-8 and truncated input.
    assert_eq!(p.parse(b"{\"event\":\"\xff\"}"), Err(MessageError::BadJson));
    assert_eq!(
        p.parse(b"{\"event\":\"pusher:ping\""),
        Err(MessageError::BadJson)
    );
}

#[test]
fn errors_are_objects_with_the_documented_code_or_null() {
    let mut out = Vec::new();
    write::error_code(&mut out, ErrorCode::ClientEventRateLimit);
    assert_eq!(
        json(&out),
        json!({"event": "pusher:error", "data": {"code": 4301, "message": "Client event rejected due to rate limit"}})
    );
    let mut out = Vec::new();
    write::error(&mut out, None, "message is not a JSON object");
    assert_eq!(
        json(&out)["data"],
        json!({"code": null, "message": "message is not a JSON object"})
    );
    let mut out = Vec::new();
    write::subscription_error(&mut out, "private-x", "AuthError", "invalid signature", 401);
    assert_eq!(
        json(&out),
        json!({"event": "pusher:subscription_error", "channel": "private-x",
               "data": {"type": "AuthError", "error": "invalid signature", "status": 401}})
    );
}

#[test]
fn subscription_succeeded_for_plain_and_presence_channels() {
    let mut out = Vec::new();
    write::subscription_succeeded(&mut out, "my-channel");
    let v = json(&out);
    assert_eq!(v["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(v["channel"], "my-channel");
    assert_eq!(inner(&v), json!({}));

    let members = [
        Member {
            user_id: "11814b369700141b222a3f3791cec2d9",
            user_info: Some("{\"name\":\"Phil Leggetter\",\"twitter\":\"@leggetter\"}"),
        },
        Member {
            user_id: "71dd6a29da2a4833336d2a964becf820",
            user_info: None,
        },
    ];
    let mut out = Vec::new();
    write::presence_subscription_succeeded(&mut out, "presence-example-channel", members);
    let v = json(&out);
    assert_eq!(v["channel"], "presence-example-channel");
    assert_eq!(
        inner(&v),
        json!({"presence": {
            "ids": ["11814b369700141b222a3f3791cec2d9", "71dd6a29da2a4833336d2a964becf820"],
            "hash": {
                "11814b369700141b222a3f3791cec2d9": {"name": "Phil Leggetter", "twitter": "@leggetter"},
                "71dd6a29da2a4833336d2a964becf820": null
            },
            "count": 2
        }})
    );
}

#[test]
fn member_added_removed_count_cache_miss_and_signin_success() {
    let mut out = Vec::new();
    write::member_added(
        &mut out,
        "presence-x",
        Member {
            user_id: "u\"1",
            user_info: Some("{\"name\":\"Zoë\"}"),
        },
    );
    let v = json(&out);
    assert_eq!(v["event"], "pusher_internal:member_added");
    assert_eq!(
        inner(&v),
        json!({"user_id": "u\"1", "user_info": {"name": "Zoë"}})
    );
    let mut out = Vec::new();
    write::member_removed(&mut out, "presence-x", "u\"1");
    let v = json(&out);
    assert_eq!(
        (v["event"].as_str(), inner(&v)),
        (
            Some("pusher_internal:member_removed"),
            json!({"user_id": "u\"1"})
        )
    );
    let mut out = Vec::new();
    write::subscription_count(&mut out, "c", 42);
    assert_eq!(inner(&json(&out)), json!({"subscription_count": 42}));
    let mut out = Vec::new();
    write::cache_miss(&mut out, "cache-c");
    assert_eq!(
        json(&out),
        json!({"event": "pusher:cache_miss", "channel": "cache-c"})
    );
    let mut out = Vec::new();
    write::watchlist_events(&mut out, &[("online", &["a\"1", "b"]), ("offline", &[])]);
    let v = json(&out);
    assert_eq!(v["event"], "pusher_internal:watchlist_events");
    assert!(v.get("channel").is_none());
    assert_eq!(
        inner(&v),
        json!({"events": [{"name": "online", "user_ids": ["a\"1", "b"]}]})
    );
    let mut out = Vec::new();
    write::signin_success(&mut out, "{\"id\":\"42\"}");
    assert_eq!(
        json(&out),
        json!({"event": "pusher:signin_success", "data": {"user_data": "{\"id\":\"42\"}"}})
    );
}

#[test]
fn channel_kinds_by_prefix() {
    let kind = |n: &str| Channel::parse(n, 200).map(|c| (c.kind, c.cache));
    assert_eq!(kind("my-channel"), Ok((Kind::Public, false)));
    assert_eq!(kind("cache-x"), Ok((Kind::Public, true)));
    assert_eq!(kind("private-x"), Ok((Kind::Private, false)));
    assert_eq!(kind("private-cache-x"), Ok((Kind::Private, true)));
    assert_eq!(
        kind("private-encrypted-x"),
        Ok((Kind::PrivateEncrypted, false))
    );
    assert_eq!(
        kind("private-encrypted-cache-x"),
        Ok((Kind::PrivateEncrypted, true))
    );
    assert_eq!(kind("presence-x"), Ok((Kind::Presence, false)));
    assert_eq!(kind("presence-cache-x"), Ok((Kind::Presence, true)));
    assert_eq!(kind("#server-to-user-42"), Ok((Kind::ServerToUser, false)));
    assert_eq!(kind("a-b_c=d@e,f.g;h"), Ok((Kind::Public, false)));
    assert_eq!(kind(""), Err(ChannelError::Empty));
    assert_eq!(kind("a b"), Err(ChannelError::BadChar));
    assert_eq!(kind("#other"), Err(ChannelError::BadChar));
    assert_eq!(kind("#server-to-user-"), Err(ChannelError::BadChar));
    assert_eq!(kind("é"), Err(ChannelError::BadChar));
    assert_eq!(
        Channel::parse(&"a".repeat(201), 200),
        Err(ChannelError::TooLong)
    );
    let c = |n| Channel::parse(n, 200).expect("valid");
    assert!(
        !c("x").requires_auth()
            && c("private-x").requires_auth()
            && c("presence-x").requires_auth()
    );
    assert!(c("private-encrypted-x").requires_auth());
    assert!(c("private-x").allows_client_events() && c("presence-x").allows_client_events());
    assert!(!c("x").allows_client_events() && !c("private-encrypted-x").allows_client_events());
    assert!(!c("cache-x").allows_client_events());
    assert_eq!(c("#server-to-user-42").server_to_user(), Some("42"));
}

#[test]
fn presence_channel_data_and_user_data() {
    let limits = crate::app::Limits::default();
    let mut dom = Dom::default();
    let m = presence::parse_channel_data(
        &mut dom,
        r#"{"user_id": 7, "user_info": {"name": "Ann"}}"#,
        &limits,
    );
    assert_eq!(
        m,
        Ok(MemberData {
            user_id: "7".into(),
            user_info: Some("{\"name\":\"Ann\"}".into())
        })
    );
    let m = presence::parse_channel_data(&mut dom, r#"{"user_id":"a"}"#, &limits).expect("ok");
    assert_eq!(m.user_info, None);
    assert_eq!(
        presence::parse_channel_data(&mut dom, "[]", &limits),
        Err(PresenceError::BadJson)
    );
    assert_eq!(
        presence::parse_channel_data(&mut dom, "{}", &limits),
        Err(PresenceError::NoUserId)
    );
    assert_eq!(
        presence::parse_channel_data(&mut dom, r#"{"user_id":1.5}"#, &limits),
        Err(PresenceError::NoUserId)
    );
    assert_eq!(
        presence::parse_channel_data(&mut dom, r#"{"user_id":""}"#, &limits),
        Err(PresenceError::UserIdLength)
    );
    let long = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(129));
    assert_eq!(
        presence::parse_channel_data(&mut dom, &long, &limits),
        Err(PresenceError::UserIdLength)
    );
    let big = format!(r#"{{"user_id":"a","user_info":"{}"}}"#, "x".repeat(1100));
    assert_eq!(
        presence::parse_channel_data(&mut dom, &big, &limits),
        Err(PresenceError::UserInfoTooLarge)
    );

    let u = presence::parse_user_data(
        &mut dom,
        r#"{"id":"u-1","user_info":{"a":1},"watchlist":["u-2",3]}"#,
        &limits,
    )
    .expect("ok");
    assert_eq!(
        (u.id.as_str(), u.user_info.as_deref(), u.watchlist.len()),
        ("u-1", Some("{\"a\":1}"), 2)
    );
    assert!(!u.watchlist_truncated);
    let ids: Vec<String> = (0..150).map(|i| format!("\"{i}\"")).collect();
    let long = format!(r#"{{"id":"u","watchlist":[{}]}}"#, ids.join(","));
    let u = presence::parse_user_data(&mut dom, &long, &limits).expect("ok");
    assert_eq!((u.watchlist.len(), u.watchlist_truncated), (100, true));
    assert_eq!(
        presence::parse_user_data(&mut dom, r#"{"id":5}"#, &limits),
        Err(PresenceError::NoUserId)
    );
    assert_eq!(
        presence::parse_user_data(&mut dom, r#"{"id":"a","watchlist":"b"}"#, &limits),
        Err(PresenceError::BadWatchlist)
    );
}

#[test]
fn roster_counts_users_not_connections() {
    let ann = MemberData {
        user_id: "ann".into(),
        user_info: Some("{}".into()),
    };
    let bob = MemberData {
        user_id: "bob".into(),
        user_info: None,
    };
    let mut r = Roster::new();
    assert_eq!(r.join(&ann, 2), Joined::NewMember);
    assert_eq!(
        r.join(&ann, 2),
        Joined::AnotherConnection,
        "second tab: no member_added"
    );
    assert_eq!(r.join(&bob, 2), Joined::NewMember);
    let carl = MemberData {
        user_id: "carl".into(),
        user_info: None,
    };
    assert_eq!(r.join(&carl, 2), Joined::Full);
    assert_eq!(r.user_count(), 2);
    assert_eq!(r.leave("ann"), Left::StillMember);
    assert_eq!(r.leave("ann"), Left::MemberGone);
    assert_eq!(r.leave("ann"), Left::NotMember);
    assert_eq!(r.members().map(|m| m.user_id).collect::<Vec<_>>(), ["bob"]);
    let mut out = Vec::new();
    write::presence_subscription_succeeded(&mut out, "presence-x", r.members());
    assert_eq!(inner(&json(&out))["presence"]["count"], 1);
    assert_eq!(r.leave("bob"), Left::MemberGone);
    assert!(r.is_empty());
}
