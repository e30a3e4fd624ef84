//! Clients we did not write against the Pusher dialect (docs/pusher.md): pusher-js in Node
//! with signatures made by the `pusher` server SDK, and laravel-echo on top of it
//! (conformance/pusher/pusher_js.mjs; installed by .ci/install.d/45-pusher.sh).

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

#[test]
fn pusher_js_pusher_sdk_and_laravel_echo() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/pusher");
    assert!(
        dir.join("node_modules/pusher-js").is_dir(),
        "pusher-js is needed in conformance/pusher/node_modules: run .ci/install"
    );
    let s = Server::start(&[
        "--pusher-app-id",
        "1",
        "--pusher-app-key",
        "key1",
        "--pusher-app-secret",
        "secret1",
    ]);
    let (host, port) = s.addr.rsplit_once(':').expect("host:port");
    let out = Command::new("node")
        .arg(dir.join("pusher_js.mjs"))
        .args([host, port])
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pusher_js.mjs failed:\n{stdout}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        s.stderr()
    );
    assert!(stdout.contains("all pusher-js steps passed"), "{stdout}");
}
