//! The Pusher HTTP API's counters (docs/metrics.md#pusher): calls by route and answered
//! status. Both labels come from fixed lists, so a client cannot grow them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ringcast_pusher::http_api::Route;

/// Routes counted by name; a path that names none (404, 405, a request cut before its
/// head was read) is `other`.
pub const ROUTES: [&str; 7] = [
    "events",
    "batch_events",
    "channels",
    "channel",
    "channel_users",
    "terminate_connections",
    "other",
];

/// Statuses counted by value; any other is `other`.
const STATUSES: [u16; 9] = [200, 400, 401, 403, 404, 405, 413, 431, 503];

/// The [`ROUTES`] label of a call, `other` when the path names no route.
#[must_use]
pub fn label(route: Option<&Route>) -> &'static str {
    match route {
        Some(Route::Events) => "events",
        Some(Route::BatchEvents) => "batch_events",
        Some(Route::Channels) => "channels",
        Some(Route::Channel(_)) => "channel",
        Some(Route::ChannelUsers(_)) => "channel_users",
        Some(Route::TerminateUserConnections(_)) => "terminate_connections",
        None => "other",
    }
}

/// One worker's Pusher HTTP API counters.
#[derive(Default)]
pub struct PusherApiMetrics {
    calls: [[AtomicU64; STATUSES.len() + 1]; ROUTES.len()],
}

impl PusherApiMetrics {
    /// Counts a call to `route` (a [`ROUTES`] label) answered with `status`.
    pub fn record(&self, route: &str, status: u16) {
        let r = ROUTES
            .iter()
            .position(|&n| n == route)
            .unwrap_or(ROUTES.len() - 1);
        let s = STATUSES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(STATUSES.len());
        self.calls[r][s].fetch_add(1, Relaxed);
    }
}

/// Appends `ringcast_pusher_api_requests_total`, summed over `workers`.
pub fn render<'a>(out: &mut String, workers: impl Iterator<Item = &'a PusherApiMetrics> + Clone) {
    let _ = writeln!(
        out,
        "# HELP ringcast_pusher_api_requests_total Pusher HTTP API calls, by route and answered status.\n# TYPE ringcast_pusher_api_requests_total counter"
    );
    for (r, route) in ROUTES.iter().enumerate() {
        for s in 0..=STATUSES.len() {
            let status = STATUSES.get(s).map_or("other".into(), u16::to_string);
            let n: u64 = workers.clone().map(|w| w.calls[r][s].load(Relaxed)).sum();
            let _ = writeln!(
                out,
                "ringcast_pusher_api_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_routes_and_statuses_land_in_other() {
        let m = PusherApiMetrics::default();
        m.record("events", 200);
        m.record("nope", 418);
        let mut out = String::new();
        render(&mut out, std::iter::once(&m));
        assert!(out.contains("{route=\"events\",status=\"200\"} 1\n"));
        assert!(out.contains("{route=\"other\",status=\"other\"} 1\n"));
        assert!(out.contains("{route=\"channel\",status=\"404\"} 0\n"));
    }
}
