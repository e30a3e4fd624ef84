//! [`AppConnections`]: open Pusher connections per app (the per-app `max_connections`,
//! docs/pusher.md#apps) and their gauge.
//!
//! Imports nothing of this crate (see `super`).

use std::collections::HashMap;
use std::sync::Mutex;

/// Open connections per app id.
#[derive(Debug, Default)]
pub struct AppConnections(Mutex<HashMap<String, u32>>);

impl AppConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic while holding it leaves counts that are still counts.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection to app `app_id` opens; false (not counted) when the app already has
    /// `max` connections.
    pub fn connect(&self, app_id: &str, max: Option<u32>) -> bool {
        let mut c = self.lock();
        let n = c.entry(app_id.to_owned()).or_insert(0);
        if max.is_some_and(|max| *n >= max) {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by [`Self::connect`] ends.
    pub fn disconnect(&self, app_id: &str) {
        let mut c = self.lock();
        if let Some(n) = c.get_mut(app_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(app_id);
            }
        }
    }

    /// Open connections of app `app_id`.
    pub fn count(&self, app_id: &str) -> u32 {
        self.lock().get(app_id).copied().unwrap_or(0)
    }

    /// Appends `ringcast_pusher_connections{app}` for each of `app_ids` (docs/metrics.md).
    pub fn render_metrics<'a>(&self, out: &mut String, app_ids: impl Iterator<Item = &'a str>) {
        use std::fmt::Write;
        out.push_str("# HELP ringcast_pusher_connections Open Pusher connections per app.\n");
        out.push_str("# TYPE ringcast_pusher_connections gauge\n");
        for id in app_ids {
            let _ = writeln!(
                out,
                "ringcast_pusher_connections{{app=\"{id}\"}} {}",
                self.count(id)
            );
        }
    }
}
