//! Settings from a TOML file, the environment and flags, in that order of precedence.

mod common;

use common::{Server, text};
use tungstenite::Message;

#[test]
fn file_env_and_flags_combine_with_flags_winning() {
    let dir = std::env::temp_dir().join(format!("ringcast-cfg-{}", common::rand_u32()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringcast.toml");
    std::fs::write(
        &path,
        "echo = true\ndefault-room = \"from-file\"\nrooms = [\"a\", \"b\", \"from-file\", \"from-env\"]\nmax_message_bytes = 100\n",
    )
    .unwrap();
    let path = path.to_str().unwrap().to_string();
    // The environment beats the file for the default room; the flag beats both for the limit.
    let server = Server::start_with_env(
        &["--config", &path, "--max-message-bytes", "200"],
        &[("RINGCAST_DEFAULT_ROOM", "from-env")],
    );
    let mut solo = server.join(None);
    solo.send(Message::text("echoed because the file says echo"))
        .unwrap();
    assert_eq!(text(&mut solo), "echoed because the file says echo");
    let mut env_room = server.join(Some("from-env"));
    solo.send(Message::text("same room")).unwrap();
    assert_eq!(text(&mut env_room), "same room");
    assert_eq!(text(&mut solo), "same room");
    // Rooms outside the file's list are refused.
    let resp = server.http(&common::upgrade_request(Some("c"), b""));
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    // 150 bytes: over the file's 100, under the flag's 200.
    solo.send(Message::binary(vec![1u8; 150])).unwrap();
    assert_eq!(solo.read().unwrap(), Message::binary(vec![1u8; 150]));
}

#[test]
fn bad_settings_fail_at_start_with_a_clear_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["--recv-buffers", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["--config", "/nonexistent/ringcast.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}
