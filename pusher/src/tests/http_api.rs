use serde_json::json;

use super::{apps, doc_app, json};
use crate::http_answer::{self, ChannelInfo};
use crate::http_api::{self, ApiError, Info, Route};
use crate::json::Dom;
use crate::socket_id::SocketId;

/// Pusher's "HTTP API reference" worked example.
const DOC_BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
const DOC_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
const DOC_TIME: i64 = 1_353_088_179;

#[test]
fn the_documented_trigger_example_authenticates() {
    assert_eq!(
        http_api::body_md5(DOC_BODY.as_bytes()),
        "ec365a775a4cd0599faeb73354201b6f"
    );
    let apps = apps();
    let (app_id, route) = http_api::route("", "POST", "/apps/3/events").expect("route");
    assert_eq!((app_id, &route), ("3", &Route::Events));
    let (app, params) = http_api::authenticate(
        &apps,
        app_id,
        "POST",
        "/apps/3/events",
        DOC_QUERY,
        DOC_BODY.as_bytes(),
        DOC_TIME,
    )
    .expect("authentic");
    assert_eq!(app.id, "3");
    assert_eq!(params.get("auth_version"), Some("1.0"));
    let trigger = http_api::parse_trigger(&mut Dom::default(), DOC_BODY.as_bytes(), &app.limits)
        .expect("body");
    assert_eq!(trigger.name, "foo");
    assert_eq!(trigger.channels, ["project-3"]);
    assert_eq!(trigger.data, r#"{"some":"data"}"#);
    assert_eq!((trigger.socket_id, trigger.info), (None, Info::default()));
}

#[test]
fn the_timestamp_window_is_600_seconds_either_way() {
    let apps = apps();
    let at = |now| {
        http_api::authenticate(
            &apps,
            "3",
            "POST",
            "/apps/3/events",
            DOC_QUERY,
            DOC_BODY.as_bytes(),
            now,
        )
    };
    assert!(at(DOC_TIME + 600).is_ok());
    assert!(at(DOC_TIME - 600).is_ok());
    let late = at(DOC_TIME + 601).expect_err("stale");
    assert!(matches!(late, ApiError::Timestamp { .. }));
    assert_eq!(late.status(), 401);
    assert!(matches!(
        at(DOC_TIME - 601),
        Err(ApiError::Timestamp { .. })
    ));
}

#[test]
fn tampering_is_refused_with_401() {
    let apps = apps();
    let body = DOC_BODY.as_bytes();
    let auth = |app: &str, path: &str, query: &str, body: &[u8]| {
        http_api::authenticate(&apps, app, "POST", path, query, body, DOC_TIME)
    };
    let other_body = DOC_BODY.replace("foo", "bar");
    assert_eq!(
        auth("3", "/apps/3/events", DOC_QUERY, other_body.as_bytes()).err(),
        Some(ApiError::BodyMd5)
    );
    let sig = auth("3", "/apps/3/batch_events", DOC_QUERY, body).expect_err("other path");
    assert!(
        matches!(&sig, ApiError::Signature { string_to_sign } if string_to_sign.starts_with("POST\n/apps/3/batch_events\nauth_key="))
    );
    assert_eq!(sig.status(), 401);
    let extra = format!("{DOC_QUERY}&socket_id=1.2");
    assert!(matches!(
        auth("3", "/apps/3/events", &extra, body),
        Err(ApiError::Signature { .. })
    ));
    assert_eq!(
        auth("4", "/apps/4/events", DOC_QUERY, body).err(),
        Some(ApiError::UnknownKey)
    );
    assert_eq!(
        auth("5", "/apps/5/events", DOC_QUERY, body).err(),
        Some(ApiError::UnknownApp)
    );
    assert_eq!(ApiError::UnknownApp.status(), 404);
    assert_eq!(
        auth("9", "/apps/9/events", DOC_QUERY, body).err(),
        Some(ApiError::AppDisabled)
    );
    let no_md5 = DOC_QUERY.replace("&body_md5=ec365a775a4cd0599faeb73354201b6f", "");
    assert_eq!(
        auth("3", "/apps/3/events", &no_md5, body).err(),
        Some(ApiError::MissingAuthParam("body_md5"))
    );
    let no_sig = DOC_QUERY.split("&auth_signature").next().expect("head");
    assert_eq!(
        auth("3", "/apps/3/events", no_sig, body).err(),
        Some(ApiError::MissingAuthParam("auth_signature"))
    );
    let v2 = DOC_QUERY.replace("auth_version=1.0", "auth_version=2.0");
    assert_eq!(
        auth("3", "/apps/3/events", &v2, body).err(),
        Some(ApiError::AuthVersion)
    );
    assert_eq!(
        auth("3", "/apps/3/events", "auth_key=%ff", body).err(),
        Some(ApiError::BadQuery)
    );
}

#[test]
fn sign_request_round_trips_through_authenticate_with_escaped_values() {
    let apps = apps();
    let app = doc_app();
    let params = [
        ("info", "user_count,subscription_count"),
        ("filter_by_prefix", "presence- x&y"),
    ];
    let q = http_api::sign_request(&app, "GET", "/apps/3/channels", &params, b"", 1000);
    assert!(q.contains("info=user_count%2Csubscription_count"));
    let (_, p) =
        http_api::authenticate(&apps, "3", "GET", "/apps/3/channels", &q, b"", 1000).expect("ok");
    assert_eq!(p.get("filter_by_prefix"), Some("presence- x&y"));
    assert_eq!(
        Info::parse(p.get("info")),
        Info {
            user_count: true,
            subscription_count: true
        }
    );
    // `+` is a space, as form encoding writes it.
    let plus = q.replace("presence-%20x", "presence-+x");
    assert!(
        http_api::authenticate(&apps, "3", "GET", "/apps/3/channels", &plus, b"", 1000).is_ok()
    );
}

#[test]
fn routes_and_methods() {
    let r = |m, p| http_api::route("/api", m, p);
    assert_eq!(
        r("POST", "/api/apps/3/batch_events"),
        Ok(("3", Route::BatchEvents))
    );
    assert_eq!(r("GET", "/api/apps/3/channels"), Ok(("3", Route::Channels)));
    assert_eq!(
        r("GET", "/api/apps/3/channels/presence-x"),
        Ok(("3", Route::Channel("presence-x".into())))
    );
    assert_eq!(
        r("GET", "/api/apps/3/channels/presence-x/users"),
        Ok(("3", Route::ChannelUsers("presence-x".into())))
    );
    assert_eq!(
        r("POST", "/api/apps/3/users/u%201/terminate_connections"),
        Ok(("3", Route::TerminateUserConnections("u 1".into())))
    );
    assert_eq!(
        r("GET", "/api/apps/3/events"),
        Err(ApiError::MethodNotAllowed)
    );
    assert_eq!(ApiError::MethodNotAllowed.status(), 405);
    for bad in [
        "/apps/3/events",
        "/api/apps/3",
        "/api/apps/3/",
        "/api/apps/3/channels//users",
        "/api/apps/3/nope",
    ] {
        assert_eq!(r("POST", bad).err(), Some(ApiError::NotFound), "{bad}");
    }
}

#[test]
fn trigger_bodies_and_their_limits() {
    let limits = doc_app().limits;
    let mut dom = Dom::default();
    let mut parse =
        |v: serde_json::Value| http_api::parse_trigger(&mut dom, v.to_string().as_bytes(), &limits);
    let t = parse(json!({"name": "e", "channel": "c", "data": {"a": 1}, "socket_id": "1.2", "info": "subscription_count"}))
        .expect("ok");
    assert_eq!(
        (t.channels.as_slice(), t.data.as_str()),
        (&["c".to_owned()][..], "{\"a\":1}")
    );
    assert_eq!(t.socket_id, Some(SocketId::new(1, 2)));
    assert!(t.info.subscription_count && !t.info.user_count);
    let t = parse(json!({"name": "e", "channels": ["b", "a", "b"], "data": ""})).expect("ok");
    assert_eq!(t.channels, ["a", "b"], "sorted, without duplicates");
    let hundred: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let cases = [
        (json!([]), ApiError::BadJson),
        (
            json!({"channel": "c", "data": "x"}),
            ApiError::BadField("name"),
        ),
        (
            json!({"name": "e", "data": "x"}),
            ApiError::BadField("channels"),
        ),
        (
            json!({"name": "e", "channels": [], "data": "x"}),
            ApiError::BadField("channels"),
        ),
        (
            json!({"name": "e", "channels": [1], "data": "x"}),
            ApiError::BadField("channels"),
        ),
        (
            json!({"name": "e", "channel": "c"}),
            ApiError::BadField("data"),
        ),
        (
            json!({"name": "e", "channel": "a b", "data": "x"}),
            ApiError::BadChannel("a b".into()),
        ),
        (
            json!({"name": "pusher:x", "channel": "c", "data": "x"}),
            ApiError::BadEventName,
        ),
        (
            json!({"name": "e".repeat(201), "channel": "c", "data": "x"}),
            ApiError::BadEventName,
        ),
        (
            json!({"name": "e", "channels": hundred, "data": "x"}),
            ApiError::TooManyChannels(100),
        ),
        (
            json!({"name": "e", "channels": ["private-encrypted-a", "b"], "data": "x"}),
            ApiError::EncryptedMulti,
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x", "socket_id": "12"}),
            ApiError::BadSocketId,
        ),
        (
            json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024 + 1)}),
            ApiError::DataTooLarge(10 * 1024),
        ),
    ];
    for (body, want) in cases {
        let status = want.status();
        assert_eq!(parse(body.clone()), Err(want), "{body}");
        if body["data"].as_str().is_some_and(|d| d.len() > 10240) {
            assert_eq!(status, 413);
        } else {
            assert_eq!(status, 400);
        }
    }
    assert!(parse(json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024)})).is_ok());
}

#[test]
fn batch_bodies() {
    let limits = doc_app().limits;
    let mut dom = Dom::default();
    let body = json!({"batch": [
        {"name": "e1", "channel": "a", "data": "one"},
        {"name": "e2", "channel": "presence-b", "data": "{}", "info": "user_count", "socket_id": "3.4"}
    ]});
    let b = http_api::parse_batch(&mut dom, body.to_string().as_bytes(), &limits).expect("ok");
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[1].channels[0].as_str(), b[1].info.user_count),
        ("presence-b", true)
    );
    let eleven: Vec<_> = (0..11)
        .map(|_| json!({"name": "e", "channel": "a", "data": "x"}))
        .collect();
    let too_many = json!({ "batch": eleven }).to_string();
    assert_eq!(
        http_api::parse_batch(&mut dom, too_many.as_bytes(), &limits),
        Err(ApiError::BatchTooLarge(10))
    );
    let no_channel = json!({"batch": [{"name": "e", "channels": ["a"], "data": "x"}]}).to_string();
    assert_eq!(
        http_api::parse_batch(&mut dom, no_channel.as_bytes(), &limits),
        Err(ApiError::BadField("channel"))
    );
    assert_eq!(
        http_api::parse_batch(&mut dom, b"{\"batch\":{}}", &limits),
        Err(ApiError::BadField("batch"))
    );
}

#[test]
fn answers_of_the_http_api() {
    let mut out = Vec::new();
    http_answer::write_trigger_answer(&mut out, None::<[(&str, ChannelInfo); 0]>);
    assert_eq!(json(&out), json!({}));
    let mut out = Vec::new();
    let infos = [
        (
            "presence-foobar",
            ChannelInfo {
                user_count: Some(42),
                subscription_count: Some(51),
            },
        ),
        (
            "another",
            ChannelInfo {
                user_count: None,
                subscription_count: Some(13),
            },
        ),
    ];
    http_answer::write_trigger_answer(&mut out, Some(infos));
    assert_eq!(
        json(&out),
        json!({"channels": {"presence-foobar": {"user_count": 42, "subscription_count": 51}, "another": {"subscription_count": 13}}})
    );
    let mut out = Vec::new();
    http_answer::write_batch_answer(&mut out, Some([infos[0].1, ChannelInfo::default()]));
    assert_eq!(
        json(&out),
        json!({"batch": [{"user_count": 42, "subscription_count": 51}, {}]})
    );
    let mut out = Vec::new();
    http_answer::write_channels(
        &mut out,
        [
            (
                "presence-foobar",
                ChannelInfo {
                    user_count: Some(42),
                    subscription_count: None,
                },
            ),
            ("x", ChannelInfo::default()),
        ],
    );
    assert_eq!(
        json(&out),
        json!({"channels": {"presence-foobar": {"user_count": 42}, "x": {}}})
    );
    let mut out = Vec::new();
    http_answer::write_channel(
        &mut out,
        true,
        ChannelInfo {
            user_count: Some(42),
            subscription_count: Some(42),
        },
    );
    assert_eq!(
        json(&out),
        json!({"occupied": true, "user_count": 42, "subscription_count": 42})
    );
    let mut out = Vec::new();
    http_answer::write_channel(&mut out, false, ChannelInfo::default());
    assert_eq!(json(&out), json!({"occupied": false}));
    let mut out = Vec::new();
    http_answer::write_users(&mut out, ["1", "2\""]);
    assert_eq!(json(&out), json!({"users": [{"id": "1"}, {"id": "2\""}]}));
}

#[test]
fn attributes_where_they_do_not_apply_are_400() {
    let limits = doc_app().limits;
    let users = Info {
        user_count: true,
        subscription_count: false,
    };
    assert!(http_answer::check_channels_query(users, Some("presence-")).is_ok());
    let err = http_answer::check_channels_query(users, None).expect_err("not limited to presence");
    assert_eq!(err.status(), 400);
    assert!(http_answer::check_channels_query(Info::default(), None).is_ok());
    assert!(http_answer::check_channel_query("presence-x", users, &limits).is_ok());
    assert!(http_answer::check_channel_query("private-x", users, &limits).is_err());
    assert!(http_answer::check_users_query("presence-x", &limits).is_ok());
    assert_eq!(
        http_answer::check_users_query("x", &limits).map_err(|e| e.status()),
        Err(400)
    );
    assert_eq!(
        http_answer::check_users_query("a b", &limits).map_err(|e| e.status()),
        Err(400)
    );
}
