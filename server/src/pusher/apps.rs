//! Pusher apps from the configuration: one from the `--pusher-app-*` flags, any number from
//! the config file's `[[pusher_apps]]` tables (docs/pusher.md#apps).

use ringcast_pusher::app::{App, Apps};

/// The keys a `[[pusher_apps]]` table may hold.
const KEYS: &[&str] = &[
    "id",
    "key",
    "secret",
    "enabled",
    "webhook_urls",
    "max_connections",
    "client_events",
    "client_events_per_second",
    "max_presence_members",
    "max_event_data_bytes",
    "activity_timeout",
    "subscription_count",
];

/// Every app: the flags' (first) then the file's; `None` when there is none (the dialect is
/// off).
///
/// # Errors
/// A message for an app the `ringcast-pusher` checks refuse (empty or odd id or key, an id or
/// key used twice) or a webhook URL the webhooks module cannot deliver to (`http://` and
/// `https://` only: [`crate::webhooks::check_url`]).
pub fn build(flag: Option<App>, file: &[App]) -> Result<Option<Apps>, String> {
    let apps: Vec<App> = flag.into_iter().chain(file.iter().cloned()).collect();
    if apps.is_empty() {
        return Ok(None);
    }
    for app in &apps {
        for url in &app.webhooks {
            crate::webhooks::check_url(url)
                .map_err(|e| format!("pusher app {:?}: webhook URL {url:?}: {e}", app.id))?;
        }
    }
    Apps::new(apps).map(Some).map_err(|e| e.to_string())
}

/// The apps of the config file's `pusher_apps` value (an array of tables).
///
/// # Errors
/// A message naming the first table or key that is wrong.
pub fn from_toml(value: &toml::Value) -> Result<Vec<App>, String> {
    let tables = value
        .as_array()
        .ok_or("pusher_apps must be an array of tables ([[pusher_apps]])")?;
    tables.iter().enumerate().map(|(i, t)| app(i, t)).collect()
}

fn app(i: usize, value: &toml::Value) -> Result<App, String> {
    let table = value
        .as_table()
        .ok_or_else(|| format!("pusher_apps[{i}] is not a table"))?;
    if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "pusher_apps[{i}]: unknown key {k:?} (known: {})",
            KEYS.join(", ")
        ));
    }
    let bad = |key: &str, what: &str| format!("pusher_apps[{i}].{key} must be {what}");
    // Pusher app ids are often numbers: an integer id is its decimal text.
    let text = |key: &str| -> Result<String, String> {
        match table.get(key) {
            Some(toml::Value::String(s)) => Ok(s.clone()),
            Some(toml::Value::Integer(n)) if key == "id" => Ok(n.to_string()),
            _ => Err(bad(key, "a string")),
        }
    };
    let mut app = App::new(text("id")?, text("key")?, text("secret")?);
    let int = |key: &str| -> Result<Option<u32>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(key, "a non-negative integer")),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| bad(key, "true or false")),
        }
    };
    if let Some(on) = flag("enabled")? {
        app.enabled = on;
    }
    if let Some(on) = flag("client_events")? {
        app.limits.client_events = on;
    }
    if let Some(on) = flag("subscription_count")? {
        app.limits.subscription_count = on;
    }
    let limits = &mut app.limits;
    limits.max_connections = int("max_connections")?.or(limits.max_connections);
    if let Some(n) = int("client_events_per_second")? {
        limits.client_events_per_second = n;
    }
    if let Some(n) = int("max_presence_members")? {
        limits.max_presence_members = n as usize;
    }
    if let Some(n) = int("max_event_data_bytes")? {
        limits.max_event_data_bytes = n as usize;
    }
    if let Some(n) = int("activity_timeout")? {
        limits.activity_timeout_secs = n;
    }
    if let Some(urls) = table.get("webhook_urls") {
        let urls = urls
            .as_array()
            .ok_or_else(|| bad("webhook_urls", "an array of strings"))?;
        for u in urls {
            let u = u
                .as_str()
                .ok_or_else(|| bad("webhook_urls", "an array of strings"))?;
            app.webhooks.push(u.to_owned());
        }
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_apps_from_toml_with_limits_and_webhooks() {
        let text = r#"
            [[pusher_apps]]
            id = 1001
            key = "k1"
            secret = "s1"
            webhook_urls = ["http://127.0.0.1:9/hook"]
            [[pusher_apps]]
            id = "two"
            key = "k2"
            secret = "s2"
            client_events = false
            max_presence_members = 5
            subscription_count = true
        "#;
        let table: toml::Table = text.parse().expect("toml");
        let apps = from_toml(&table["pusher_apps"]).expect("apps");
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].id, "1001");
        assert_eq!(apps[0].webhooks, ["http://127.0.0.1:9/hook"]);
        assert!(!apps[1].limits.client_events);
        assert!(apps[1].limits.subscription_count);
        assert!(!apps[0].limits.subscription_count, "off by default");
        assert_eq!(apps[1].limits.max_presence_members, 5);
        let built = build(Some(App::new("f", "fk", "fs")), &apps)
            .expect("valid")
            .expect("some");
        assert_eq!(built.all().len(), 3);
        assert_eq!(built.by_key("k2").map(|a| a.id.as_str()), Some("two"));
    }

    #[test]
    fn bad_tables_are_named() {
        let t: toml::Table = "[[pusher_apps]]\nid='a'\nkey='k'\nsecret='s'\ncolour=1\n"
            .parse()
            .expect("toml");
        let e = from_toml(&t["pusher_apps"]).expect_err("unknown key");
        assert!(e.contains("colour"), "{e}");
        let t: toml::Table = "[[pusher_apps]]\nid='a'\nkey='k'\n".parse().expect("toml");
        assert!(from_toml(&t["pusher_apps"]).is_err(), "no secret");
        let mut dup = App::new("a", "k", "s");
        assert!(build(Some(dup.clone()), &[dup.clone()]).is_err(), "same id");
        dup.webhooks.push("ftp://x".into());
        assert!(build(None, &[dup]).is_err(), "not http");
        assert!(build(None, &[]).expect("none").is_none());
    }
}
