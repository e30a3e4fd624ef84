//! The Pusher demo page (docs/pusher.md#demo-page): its routes, the insecure signer behind
//! `--pusher-demo-auth` (the page in Chromium is `pusher_js.rs`'s
//! `the_pusher_demo_page_in_chromium`).

mod common;

use common::Server;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn get(s: &Server, target: &str) -> String {
    s.http(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn hmac_hex(secret: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(text.as_bytes());
    let tag = mac.finalize().into_bytes();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_page_and_pusher_js_are_served_and_the_signer_is_off_by_default() {
    let s = Server::start(&common::PUSHER_APP);
    let page = get(&s, "/pusher-demo?user=ann");
    assert_eq!(status(&page), "200", "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert!(body(&page).contains(r#"const KEY = "key1", PREFIX = """#));
    let js = get(&s, "/pusher-demo/pusher.min.js");
    assert_eq!(status(&js), "200");
    assert!(body(&js).contains("Pusher JavaScript Library v8.6.0"));
    let auth = get(
        &s,
        "/pusher-demo/auth?socket_id=1.2&channel_name=presence-x&user=a",
    );
    assert_eq!(status(&auth), "404", "{auth}");
    assert!(body(&auth).contains("--pusher-demo-auth"), "{auth}");
    // Other paths under it are not routes.
    assert_eq!(status(&get(&s, "/pusher-demo/other")), "426");
}

#[test]
fn no_demo_without_an_app_and_the_prefix_applies() {
    let s = Server::start(&[]);
    assert_eq!(status(&get(&s, "/pusher-demo")), "426");
    let mut args = common::PUSHER_APP.to_vec();
    args.extend(["--pusher-path-prefix", "/px"]);
    let s = Server::start(&args);
    assert_eq!(status(&get(&s, "/pusher-demo")), "426");
    let page = get(&s, "/px/pusher-demo");
    assert_eq!(status(&page), "200");
    assert!(body(&page).contains(r#"src="/px/pusher-demo/pusher.min.js""#));
}

#[test]
fn the_insecure_signer_signs_presence_and_private_only() {
    let mut args = common::PUSHER_APP.to_vec();
    args.push("--pusher-demo-auth");
    let s = Server::start(&args);
    let r = get(
        &s,
        "/pusher-demo/auth?socket_id=12.34&channel_name=presence-demo&user=ann",
    );
    assert_eq!(status(&r), "200", "{r}");
    let v: serde_json::Value = serde_json::from_str(body(&r)).expect("JSON");
    let data = v["channel_data"].as_str().expect("channel_data");
    let inner: serde_json::Value = serde_json::from_str(data).expect("JSON");
    assert_eq!(inner["user_id"], "ann");
    let want = hmac_hex("secret1", &format!("12.34:presence-demo:{data}"));
    assert_eq!(v["auth"], format!("key1:{want}"));
    let r = get(
        &s,
        "/pusher-demo/auth?socket_id=12.34&channel_name=private-a",
    );
    let v: serde_json::Value = serde_json::from_str(body(&r)).expect("JSON");
    let want = hmac_hex("secret1", "12.34:private-a");
    assert_eq!(v["auth"], format!("key1:{want}"));
    for bad in [
        "socket_id=12.34&channel_name=public",
        "socket_id=12.34&channel_name=private-encrypted-a",
        "socket_id=12.34&channel_name=presence-a&user=a%22b",
        "socket_id=12.34&channel_name=presence-a",
        "socket_id=x&channel_name=private-a",
        "channel_name=private-a",
    ] {
        let r = get(&s, &format!("/pusher-demo/auth?{bad}"));
        assert_eq!(status(&r), "400", "{bad}: {r}");
    }
}
