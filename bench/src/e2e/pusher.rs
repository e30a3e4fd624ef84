//! The `pusher` row (issue 24): the server gets one Pusher app from a config file (a file
//! because the per-connection client event rate, 10/s by default, has no flag, and the
//! row's publisher sends client events at max rate), loadtest signs with the same key and
//! secret.

use std::path::Path;

use super::scenarios::Scenario;

/// The app's key and secret (loadtest `pusher`'s defaults).
const APP_KEY: &str = "app-key";
const APP_SECRET: &str = "app-secret";

/// The app file: client events unthrottled, so the publisher's max rate is the server's.
const APP_FILE: &str = "[[pusher_apps]]
id = \"1\"
key = \"app-key\"
secret = \"app-secret\"
client_events_per_second = 1000000000
";

/// loadtest's options after `pusher …`: the app to sign subscriptions for.
pub fn loadtest_args() -> [String; 4] {
    [
        "--app-key".into(),
        APP_KEY.into(),
        "--app-secret".into(),
        APP_SECRET.into(),
    ]
}

/// The server arguments of `sc`: its own, and for a Pusher row `--config` naming the app
/// file, written into `logs` (the run's log directory).
pub fn server_args(sc: &Scenario, logs: &Path) -> std::io::Result<Vec<String>> {
    let mut args = sc.server_args.clone();
    if sc.pusher {
        let file = logs.join("pusher-apps.toml");
        std::fs::write(&file, APP_FILE)?;
        args.extend(["--config".into(), file.display().to_string()]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::scenarios;

    #[test]
    fn only_the_pusher_row_gets_the_app_file() {
        let dir = std::env::temp_dir().join(format!("e2e-pusher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for sc in scenarios::all(true) {
            let args = server_args(&sc, &dir).expect("write");
            assert_eq!(args.iter().any(|a| a == "--config"), sc.key == "pusher");
        }
        let text = std::fs::read_to_string(dir.join("pusher-apps.toml")).expect("file");
        assert!(text.contains(APP_KEY) && text.contains(APP_SECRET));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
