//! Parsing commands and encoding envelopes allocates nothing once warm (a counting global
//! allocator proves it). Also reports what serde_json costs for the same commands.

#[path = "../../protocol/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;
use ringcast_pubsub::command::{Command, Parser};
use ringcast_pubsub::envelope;

/// 10,000 publish / subscribe / error messages, escapes and nesting included.
fn commands() -> Vec<Vec<u8>> {
    (0..10_000u32)
        .map(|i| {
            match i % 5 {
                0 => format!(r#"{{"op":"publish","topic":"room-{i}","id":{i},"data":{{"text":"hello \"{i}\" \u00e9","n":[1,2,{{"x":null}}]}}}}"#),
                1 => format!(r#"{{"op":"subscribe","topic":"t\n{i}","id":"s{i}","since":{{"offset":{i},"epoch":"e{i}"}},"presence":true}}"#),
                2 => format!(r#"{{"op":"subscribe","topic":"t{i}","since":{{"last":50}}}}"#),
                3 => format!(r#"{{"op":"publish","topic":"t","data":"{}"}}"#, "x".repeat(i as usize % 1500)),
                _ => format!(r#"{{"op":"nope","id":{i}}}"#),
            }
            .into_bytes()
        })
        .collect()
}

fn parse_all(parser: &mut Parser, msgs: &[Vec<u8>]) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    for m in msgs {
        match parser.parse(m) {
            Ok(Command::Publish { data, .. }) => ok += data.len().min(1),
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    (ok, err)
}

#[test]
fn parsing_10_000_commands_does_not_allocate_once_warm() {
    let msgs = commands();
    let mut parser = Parser::new();
    // Warm-up: the buffers grow to the largest message once.
    parse_all(&mut parser, &msgs);
    let before = allocs();
    let (ok, err) = parse_all(&mut parser, &msgs);
    let after = allocs();
    assert_eq!((ok, err), (8_000, 2_000));
    assert_eq!(after - before, 0, "the command parser allocated");
}

#[test]
fn bad_json_does_not_allocate_once_warm() {
    let mut parser = Parser::new();
    let bad: [&[u8]; 4] = [b"{\"op\":", b"[1,2]", b"\xff", b""];
    for m in bad {
        assert!(parser.parse(m).is_err());
    }
    let before = allocs();
    for _ in 0..1000 {
        for m in bad {
            assert!(parser.parse(m).is_err());
        }
    }
    assert_eq!(allocs() - before, 0, "the error path allocated");
}

#[test]
fn encoding_envelopes_into_a_warm_buffer_does_not_allocate() {
    let mut out = Vec::with_capacity(4096);
    let before = allocs();
    for i in 0..10_000u64 {
        out.clear();
        envelope::message(&mut out, "topic \"q\"", br#"{"text":"hi"}"#, Some(i));
        envelope::message_text(&mut out, "t", "line\nbreak", None);
        envelope::message_binary(&mut out, "t", &[0, 1, 2, 255], Some(i));
        envelope::subscribed(&mut out, "t", "1", None, Some(true));
        envelope::published(&mut out, "t", "\"id\"", Some(i));
        envelope::error(
            &mut out,
            None,
            ringcast_pubsub::error::ErrorCode::BadJson,
            "x",
        );
    }
    assert_eq!(allocs() - before, 0, "an encoder allocated");
}

/// Not a requirement, a measurement for the report: serde_json with borrowed fields and
/// `RawValue` data on the same 10,000 messages.
#[test]
fn serde_json_allocations_for_comparison() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Cmd<'a> {
        op: &'a str,
        #[serde(borrow)]
        topic: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let msgs = commands();
    let run = || {
        let mut n = 0;
        for m in &msgs {
            if serde_json::from_slice::<Cmd<'_>>(m).is_ok() {
                n += 1;
            }
        }
        n
    };
    run();
    let before = allocs();
    let n = run();
    let spent = allocs() - before;
    let publish = br#"{"op":"publish","topic":"chat","id":17,"data":{"user":"ann","text":"hello there, how are you today?"}}"#;
    let before = allocs();
    assert!(serde_json::from_slice::<Cmd<'_>>(publish).is_ok());
    let one = allocs() - before;
    println!(
        "serde_json: {spent} allocations for 10,000 commands ({n} ok); {one} for one 100-byte publish"
    );
}
