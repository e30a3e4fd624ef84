//! The Pusher demo page (docs/pusher.md#demo-page): a chat with a member list written for
//! pusher-js, served with pusher-js's browser build so it works without a CDN:
//!
//! - `GET {prefix}/pusher-demo`: the page, for the first configured app's key;
//! - `GET {prefix}/pusher-demo/pusher.min.js`: pusher-js 8.6.0 (MIT, server/assets/);
//! - `GET {prefix}/pusher-demo/auth?socket_id=…&channel_name=…&user=…`: only with
//!   `--pusher-demo-auth`. It signs any `private-` or `presence-` subscription for the user
//!   name the browser claims, which is why it is off by default: in a real deployment the
//!   app's own server (which knows who is logged in) signs, and the page can be pointed at
//!   it with `?auth=URL` instead.

use ringcast_protocol::handshake::render_response;
use ringcast_pusher::app::App;
use ringcast_pusher::auth::sign_channel;
use ringcast_pusher::channel::{Channel, Kind};
use ringcast_pusher::query;

use crate::config::Config;

/// The page; `{{KEY}}` and `{{PREFIX}}` are filled in when served.
const PAGE: &str = include_str!("demo.html");
/// pusher-js's browser build (dist/web/pusher.min.js of the npm package, MIT licence in
/// server/assets/pusher-js-LICENCE).
const PUSHER_JS: &[u8] = include_bytes!("../../../assets/pusher-js-8.6.0.min.js");
/// Longest user name the demo signing endpoint accepts.
const MAX_USER: usize = 64;

/// The complete response to `GET target` when it names a demo route, `None` otherwise
/// (the caller answers as for any unknown path).
pub fn response(target: &str, cfg: &Config) -> Option<Vec<u8>> {
    let app = cfg.pusher.as_ref()?.all().first()?;
    let prefix = cfg.pusher_path_prefix.trim_end_matches('/');
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let route = path.strip_prefix(prefix)?.strip_prefix("/pusher-demo")?;
    let mut out = Vec::new();
    match route {
        "" | "/" => {
            let page = PAGE.replace("{{KEY}}", &app.key).replace("{{PREFIX}}", prefix);
            render_response(
                &mut out,
                200,
                "",
                "text/html; charset=utf-8",
                page.as_bytes(),
            );
        }
        "/pusher.min.js" => render_response(
            &mut out,
            200,
            "Cache-Control: max-age=86400\r\n",
            "application/javascript; charset=utf-8",
            PUSHER_JS,
        ),
        "/auth" if cfg.pusher_demo_auth => {
            let (status, body) = match sign(app, query) {
                Ok(json) => (200, json),
                Err(why) => (400, why.to_owned()),
            };
            let kind = if status == 200 {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            render_response(&mut out, status, "", kind, body.as_bytes());
        }
        "/auth" => render_response(
            &mut out,
            404,
            "",
            "text/plain; charset=utf-8",
            b"the demo signing endpoint is off: start ringcast with --pusher-demo-auth (insecure), \
              or open the page with ?auth=URL of your app server's auth endpoint",
        ),
        _ => return None,
    }
    Some(out)
}

/// The `{"auth":…[,"channel_data":…]}` answer for the demo's query, or why it is refused.
fn sign(app: &App, query: &str) -> Result<String, &'static str> {
    let pairs = query::parse(query).ok_or("the query is not UTF-8")?;
    let socket_id = query::get(&pairs, "socket_id").ok_or("no socket_id")?;
    let name = query::get(&pairs, "channel_name").ok_or("no channel_name")?;
    let user = query::get(&pairs, "user").unwrap_or("");
    if socket_id.is_empty() || !socket_id.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("socket_id is not a socket id");
    }
    let channel = Channel::parse(name, app.limits.max_channel_name_len)
        .map_err(|_| "channel_name is not a channel name")?;
    // Plain names only, so the JSON below needs no escaping.
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    match channel.kind {
        Kind::Private => {
            let sig = sign_channel(&app.secret, socket_id, name, None);
            Ok(format!(r#"{{"auth":"{}:{sig}"}}"#, app.key))
        }
        Kind::Presence if (1..=MAX_USER).contains(&user.len()) && plain(user) => {
            let data = format!(r#"{{"user_id":"{user}","user_info":{{"name":"{user}"}}}}"#);
            let sig = sign_channel(&app.secret, socket_id, name, Some(&data));
            let data_json = data.replace('"', "\\\"");
            Ok(format!(
                r#"{{"auth":"{}:{sig}","channel_data":"{data_json}"}}"#,
                app.key
            ))
        }
        Kind::Presence => Err("user must be 1-64 characters of A-Z a-z 0-9 _ - ."),
        _ => Err("the demo signs private- and presence- channels only"),
    }
}
