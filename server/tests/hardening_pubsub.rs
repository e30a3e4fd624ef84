//! Issue 21 rows 4 and 5 on one node: every outbound byte of the JSON pub/sub mode counts
//! towards `--max-backpressure` (docs/limits.md#backpressure), history replays included.

mod common;

use std::io::Write;
use std::time::Duration;

use common::json;
use common::proc::poll_until;
use common::{Raw, Server};
use ringcast_protocol::frame::{OpCode, encode_masked_frame};

/// Row 5: a client that never reads and asks for the same 1,000-message replay again and again
/// is cut with 1008 once its backlog passes the limit, instead of queueing gigabytes.
#[test]
fn a_history_replay_counts_towards_max_backpressure() {
    let server = Server::start(&[
        "--workers",
        "1",
        "--history-size",
        "1000",
        "--max-backpressure",
        "262144",
    ]);
    let mut publisher = json::client(&server);
    let data = "x".repeat(1000);
    for i in 0..1000 {
        let id = if i == 999 { r#","id":"last""# } else { "" };
        json::send(
            &mut publisher,
            &format!(r#"{{"op":"publish","topic":"h","data":"{data}"{id}}}"#),
        );
    }
    assert_eq!(json::recv(&mut publisher)["op"], "published");
    let (mut raw, _) = Raw::connect(&server, Some("pubsub"), b"");
    let mut rounds = Vec::new();
    for _ in 0..400 {
        encode_masked_frame(
            &mut rounds,
            OpCode::Text,
            true,
            br#"{"op":"subscribe","topic":"h","since":{"last":1000}}"#,
            [1, 2, 3, 4],
        );
        encode_masked_frame(
            &mut rounds,
            OpCode::Text,
            true,
            br#"{"op":"unsubscribe","topic":"h"}"#,
            [1, 2, 3, 4],
        );
    }
    // ~400 MB of replay asked for; the writes end early once the server cuts the client.
    let _ = raw.stream.write_all(&rounds);
    assert!(
        poll_until(Duration::from_secs(20), || {
            server.metric("ringcast_backpressure_disconnects_total") == 1
        }),
        "never cut: the replays bypassed --max-backpressure"
    );
}
