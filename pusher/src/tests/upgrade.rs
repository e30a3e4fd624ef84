use super::apps;
use crate::app::{App, Apps, AppsError};
use crate::error::{ErrorCode, Reconnect};
use crate::upgrade::UpgradePath;

#[test]
fn a_pusher_js_upgrade_names_the_app_and_protocol() {
    let apps = apps();
    let at = UpgradePath::new("");
    let target = "/app/278d425bdf160c739803?protocol=7&client=js&version=8.4.0&flash=false";
    assert!(at.matches(target));
    let up = at.parse(&apps, target).expect("accepted");
    assert_eq!(up.app.id, "3");
    assert_eq!(up.protocol, 7);
    assert_eq!(up.client.as_deref(), Some("js"));
    assert_eq!(up.version.as_deref(), Some("8.4.0"));
    assert!(!up.wants_error_before_close());
}

#[test]
fn a_configured_prefix_is_required_and_a_trailing_slash_tolerated() {
    let apps = apps();
    let at = UpgradePath::new("/pusher/");
    let up = at
        .parse(&apps, "/pusher/app/otherkey/?protocol=6")
        .expect("accepted");
    assert_eq!(up.app.id, "4");
    assert!(!at.matches("/app/otherkey?protocol=7"));
    assert_eq!(
        at.parse(&apps, "/app/otherkey?protocol=7"),
        Err(ErrorCode::PathNotFound)
    );
    assert!(!UpgradePath::new("").matches("/application/x"));
}

#[test]
fn bad_upgrades_get_the_documented_close_codes() {
    let apps = apps();
    let at = UpgradePath::new("");
    let cases = [
        ("/app/nokey?protocol=7", ErrorCode::AppNotFound, 4001),
        ("/app/offkey?protocol=7", ErrorCode::AppDisabled, 4003),
        ("/app/?protocol=7", ErrorCode::PathNotFound, 4005),
        ("/app/a/b?protocol=7", ErrorCode::PathNotFound, 4005),
        (
            "/app/otherkey?protocol=7&version=%20bad",
            ErrorCode::InvalidVersion,
            4006,
        ),
        (
            "/app/otherkey?protocol=8",
            ErrorCode::UnsupportedProtocol,
            4007,
        ),
        (
            "/app/otherkey?protocol=4",
            ErrorCode::UnsupportedProtocol,
            4007,
        ),
        (
            "/app/otherkey?protocol=seven",
            ErrorCode::UnsupportedProtocol,
            4007,
        ),
        ("/app/otherkey?client=js", ErrorCode::NoProtocol, 4008),
        ("/app/otherkey", ErrorCode::NoProtocol, 4008),
    ];
    for (target, code, number) in cases {
        assert_eq!(at.parse(&apps, target), Err(code), "{target}");
        assert_eq!(code.code(), number);
        assert_eq!(code.reconnect(), Reconnect::Never);
        assert!(code.closes());
    }
    let old = at
        .parse(&apps, "/app/otherkey?protocol=5")
        .expect("protocol 5");
    assert!(old.wants_error_before_close());
}

#[test]
fn error_code_ranges_follow_the_protocol_page() {
    assert_eq!(ErrorCode::OverCapacity.reconnect(), Reconnect::Backoff);
    assert_eq!(ErrorCode::PongNotReceived.code(), 4201);
    assert_eq!(
        ErrorCode::ReconnectImmediately.reconnect(),
        Reconnect::Immediately
    );
    assert_eq!(ErrorCode::ClientEventRateLimit.code(), 4301);
    assert!(!ErrorCode::ClientEventRateLimit.closes());
    assert_eq!(
        ErrorCode::Unauthorized.message(),
        "Connection is unauthorized"
    );
    for code in [
        ErrorCode::SslOnly,
        ErrorCode::WatchlistLimit,
        ErrorCode::ClosedAfterInactivity,
    ] {
        assert!(code.message().len() <= 123, "fits a close reason");
    }
}

#[test]
fn apps_refuse_duplicates_empties_and_odd_characters() {
    let a = || App::new("1", "k", "s");
    assert_eq!(
        Apps::new(vec![a(), a()]).err(),
        Some(AppsError::DuplicateId("1".into()))
    );
    let b = App::new("2", "k", "s");
    assert_eq!(
        Apps::new(vec![a(), b]).err(),
        Some(AppsError::DuplicateKey("k".into()))
    );
    assert_eq!(
        Apps::new(vec![App::new("1", "k", "")]).err(),
        Some(AppsError::Empty("1".into()))
    );
    assert_eq!(
        Apps::new(vec![App::new("1", "k:x", "s")]).err(),
        Some(AppsError::BadChar("1".into()))
    );
    let apps = Apps::new(vec![a()]).expect("ok");
    assert!(apps.by_key("k").is_some() && apps.by_id("1").is_some() && apps.by_key("1").is_none());
    assert!(
        !format!("{:?}", apps.all()[0]).contains("secret: "),
        "secret stays out of Debug"
    );
}

#[test]
fn topics_keep_apps_apart_and_split_back() {
    use crate::app::{split_topic, topic};
    assert_eq!(topic("3", "private-chat"), "#pusher/3/private-chat");
    assert_ne!(topic("3", "chat"), topic("4", "chat"));
    assert_eq!(
        split_topic("#pusher/3/presence-a/b"),
        Some(("3", "presence-a/b"))
    );
    assert_eq!(split_topic("pusher/3/x"), None);
}

#[test]
fn client_event_budget_is_per_one_second_window() {
    use crate::app::ClientEventBudget;
    let mut b = ClientEventBudget::new(10);
    assert!((0..10).all(|i| b.allow(5000 + i)));
    assert!(
        !b.allow(5500),
        "the 11th within the second is refused (4301)"
    );
    assert!(!b.allow(5999));
    assert!(b.allow(6000), "a new window");
    let mut none = ClientEventBudget::new(0);
    assert!(!none.allow(0));
}
