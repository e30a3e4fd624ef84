//! Signatures made by Pusher's official Python server SDK (see the fixture's generator) are
//! accepted, and ours equal theirs.

use serde_json::Value;

use super::doc_app;
use crate::app::Apps;
use crate::auth;
use crate::http_answer;
use crate::http_api::{self, Info, Route};
use crate::json::Dom;
use crate::webhook;

const FIXTURE: &str = include_str!("../../tests/fixtures/sdk_signatures.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture is JSON")
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("string expected: {v}"))
}

#[test]
fn sdk_channel_auth_strings_verify_and_match_ours() {
    let app = doc_app();
    let f = fixture();
    assert_eq!(s(&f["app"]["secret"]), app.secret);
    let cases = f["channel_auth"].as_array().expect("cases");
    assert!(cases.len() >= 5);
    for c in cases {
        let (socket, channel, data, sdk) = (
            s(&c["socket_id"]),
            s(&c["channel"]),
            c["channel_data"].as_str(),
            s(&c["auth"]),
        );
        assert_eq!(
            auth::verify_channel(&app, socket, channel, data, sdk),
            Ok(()),
            "{c}"
        );
        let ours = format!(
            "{}:{}",
            app.key,
            auth::sign_channel(&app.secret, socket, channel, data)
        );
        assert_eq!(ours, sdk, "{c}");
    }
}

#[test]
fn sdk_user_auth_strings_verify_and_match_ours() {
    let app = doc_app();
    for c in fixture()["user_auth"].as_array().expect("cases") {
        let (socket, data, sdk) = (s(&c["socket_id"]), s(&c["user_data"]), s(&c["auth"]));
        assert_eq!(auth::verify_user(&app, socket, data, sdk), Ok(()), "{c}");
        assert_eq!(
            format!("{}:{}", app.key, auth::sign_user(&app.secret, socket, data)),
            sdk
        );
    }
}

#[test]
fn sdk_http_requests_authenticate_and_their_bodies_parse() {
    let apps = Apps::new(vec![doc_app()]).expect("apps");
    let f = fixture();
    let now = f["now"].as_i64().expect("now");
    let mut dom = Dom::default();
    for r in f["requests"].as_array().expect("requests") {
        let (name, method, path, query, body) = (
            s(&r["name"]),
            s(&r["method"]),
            s(&r["path"]),
            s(&r["query"]),
            s(&r["body"]),
        );
        // pusher 3.3.4 sends terminate_connections without `/apps/{id}` (an SDK quirk the
        // router does not follow); its signature over that path is still checked.
        if name != "terminate_user_connections" {
            let (id, _) =
                http_api::route("", method, path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(id, "3");
        }
        let (app, params) =
            http_api::authenticate(&apps, "3", method, path, query, body.as_bytes(), now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let late =
            http_api::authenticate(&apps, "3", method, path, query, body.as_bytes(), now + 601);
        assert!(late.is_err(), "{name}");
        match name {
            "trigger" => {
                let t = http_api::parse_trigger(&mut dom, body.as_bytes(), &app.limits)
                    .expect("trigger");
                assert_eq!(t.channels, ["my-channel", "presence-x"]);
                assert_eq!(
                    serde_json::from_str::<Value>(&t.data).expect("data"),
                    serde_json::json!({"message": "hi"})
                );
                assert_eq!(t.socket_id.map(|s| s.to_string()).as_deref(), Some("1.2"));
            }
            "trigger_batch" => {
                let b =
                    http_api::parse_batch(&mut dom, body.as_bytes(), &app.limits).expect("batch");
                assert_eq!(
                    b.iter().map(|t| t.data.as_str()).collect::<Vec<_>>(),
                    ["one", "{\"n\": 2}"]
                );
            }
            "channels_info" => {
                let info = Info::parse(params.get("info"));
                let prefix = params.get("filter_by_prefix");
                assert!(info.user_count && prefix == Some("presence-"));
                assert!(http_answer::check_channels_query(info, prefix).is_ok());
            }
            "channel_info" => {
                assert_eq!(
                    http_api::route("", method, path).map(|r| r.1),
                    Ok(Route::Channel("presence-x".into()))
                );
                let info = Info::parse(params.get("info"));
                assert!(info.user_count && info.subscription_count);
            }
            _ => {}
        }
    }
}

#[test]
fn our_webhook_signature_is_the_one_the_sdk_validates() {
    let app = doc_app();
    let f = fixture();
    let body = s(&f["webhook"]["body"]);
    assert_eq!(
        webhook::signature(&app, body.as_bytes()),
        s(&f["webhook"]["signature"])
    );
}
