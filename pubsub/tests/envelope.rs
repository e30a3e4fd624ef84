//! Every envelope parses with serde_json into the expected values, for arbitrary strings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use ringcast_pubsub::command::{Command, Parser};
use ringcast_pubsub::envelope::{self, Member, Position};
use ringcast_pubsub::error::ErrorCode;
use serde_json::{Value, json};

fn parsed(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// Raw JSON ids as a client may send them.
fn raw_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

proptest! {
    #[test]
    fn strings_round_trip(s in any::<String>()) {
        let mut out = b"prefix".to_vec();
        envelope::write_str(&mut out, &s);
        prop_assert_eq!(&out[..6], b"prefix", "appends, never clears");
        let back: String = serde_json::from_slice(&out[6..]).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn control_and_quote_heavy_strings_round_trip(
        s in proptest::collection::vec(prop_oneof![Just('"'), Just('\\'), Just('/'), proptest::char::range('\u{0}', '\u{1f}'), Just('\u{7f}'), Just('é'), Just('\u{2028}')], 0..64)
    ) {
        let s: String = s.into_iter().collect();
        let mut out = Vec::new();
        envelope::write_str(&mut out, &s);
        let back: String = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn message_carries_raw_data_and_offset(topic in any::<String>(), n in any::<i64>(), offset in proptest::option::of(any::<u64>())) {
        let data = json!({"n": n, "s": "x\"y", "a": [1, null]}).to_string();
        let mut out = Vec::new();
        envelope::message(&mut out, &topic, data.as_bytes(), offset);
        let mut want = json!({"op": "message", "topic": topic, "data": {"n": n, "s": "x\"y", "a": [1, null]}});
        if let Some(o) = offset { want["offset"] = json!(o); }
        prop_assert_eq!(parsed(&out), want);
        // The data bytes appear verbatim.
        prop_assert!(out.windows(data.len()).any(|w| w == data.as_bytes()));
    }

    #[test]
    fn room_text_becomes_a_json_string(topic in any::<String>(), text in any::<String>(), offset in proptest::option::of(any::<u64>())) {
        let mut out = Vec::new();
        envelope::message_text(&mut out, &topic, &text, offset);
        let mut want = json!({"op": "message", "topic": topic, "data": text});
        if let Some(o) = offset { want["offset"] = json!(o); }
        prop_assert_eq!(parsed(&out), want);
    }

    #[test]
    fn room_binary_becomes_padded_base64(topic in any::<String>(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut out = Vec::new();
        envelope::message_binary(&mut out, &topic, &payload, None);
        let v = parsed(&out);
        prop_assert_eq!(&v["op"], "message");
        prop_assert_eq!(&v["topic"], &json!(topic));
        let b64 = v["binary"].as_str().unwrap();
        prop_assert_eq!(b64.len() % 4, 0, "padded");
        prop_assert_eq!(STANDARD.decode(b64).unwrap(), payload);
        prop_assert!(v.get("data").is_none());
    }

    #[test]
    fn subscribed_with_and_without_history(
        topic in any::<String>(), id in raw_id(), epoch in any::<String>(), offset in any::<u64>(),
        history in any::<bool>(), recovered in proptest::option::of(any::<bool>()),
    ) {
        let mut out = Vec::new();
        let position = history.then_some(Position { epoch: &epoch, offset });
        envelope::subscribed(&mut out, &topic, &id, position, recovered);
        let mut want = json!({"op": "subscribed", "topic": topic, "id": serde_json::from_str::<Value>(&id).unwrap()});
        if history { want["epoch"] = json!(epoch); want["offset"] = json!(offset); }
        if let Some(r) = recovered { want["recovered"] = json!(r); }
        prop_assert_eq!(parsed(&out), want);
    }

    #[test]
    fn unsubscribed_and_published(topic in any::<String>(), id in raw_id(), offset in proptest::option::of(any::<u64>())) {
        let id_value: Value = serde_json::from_str(&id).unwrap();
        let mut out = Vec::new();
        envelope::unsubscribed(&mut out, &topic, &id);
        prop_assert_eq!(parsed(&out), json!({"op": "unsubscribed", "topic": topic, "id": id_value}));
        out.clear();
        envelope::published(&mut out, &topic, &id, offset);
        let mut want = json!({"op": "published", "topic": topic, "id": id_value});
        if let Some(o) = offset { want["offset"] = json!(o); }
        prop_assert_eq!(parsed(&out), want);
    }

    #[test]
    fn error_with_and_without_id(id in proptest::option::of(raw_id()), message in any::<String>()) {
        let mut out = Vec::new();
        envelope::error(&mut out, id.as_deref(), ErrorCode::TooManySubscriptions, &message);
        let mut want = json!({"op": "error", "code": "too_many_subscriptions", "message": message});
        if let Some(id) = &id { want["id"] = serde_json::from_str(id).unwrap(); }
        prop_assert_eq!(parsed(&out), want);
    }

    #[test]
    fn presence_snapshot_and_events(
        topic in any::<String>(),
        members in proptest::collection::vec((any::<String>(), proptest::option::of(any::<String>())), 0..8),
        id in proptest::option::of(raw_id()),
    ) {
        let list: Vec<Member<'_>> = members.iter().map(|(c, u)| Member { client: c, user: u.as_deref() }).collect();
        let clients: Vec<Value> = members.iter().map(|(c, u)| match u {
            Some(u) => json!({"client": c, "user": u}),
            None => json!({"client": c}),
        }).collect();
        let mut out = Vec::new();
        envelope::presence(&mut out, &topic, id.as_deref(), list.iter().copied(), 5000);
        let mut want = json!({"op": "presence", "topic": topic, "clients": clients, "count": 5000});
        if let Some(id) = &id { want["id"] = serde_json::from_str(id).unwrap(); }
        prop_assert_eq!(parsed(&out), want);

        out.clear();
        envelope::presence_count(&mut out, &topic, None, 1001);
        prop_assert_eq!(parsed(&out), json!({"op": "presence", "topic": topic, "count": 1001}));

        for (m, want) in list.iter().zip(&clients) {
            for (op, encode) in [("join", envelope::join as fn(&mut Vec<u8>, &str, Member<'_>)), ("leave", envelope::leave)] {
                out.clear();
                encode(&mut out, &topic, *m);
                let mut want = want.clone();
                want["op"] = json!(op);
                want["topic"] = json!(topic);
                prop_assert_eq!(parsed(&out), want);
            }
        }
    }

    #[test]
    fn u64_in_decimal(n in any::<u64>()) {
        let mut out = Vec::new();
        envelope::write_u64(&mut out, n);
        prop_assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
    }

    /// A publish's data and id, parsed by our parser, come out of the envelopes unchanged.
    #[test]
    fn parse_then_encode_preserves_data_and_id(s in any::<String>(), n in any::<i32>(), id in raw_id()) {
        let data = json!({"s": s, "n": n, "l": [s, {"k": n}]}).to_string();
        let input = format!(r#"{{"op":"publish","topic":"t","id":{id},"data":{data}}}"#);
        let mut parser = Parser::new();
        let Ok(Command::Publish { topic, id: Some(raw_id), data: raw }) = parser.parse(input.as_bytes()) else {
            panic!("{input}");
        };
        prop_assert_eq!(raw, data.as_str());
        prop_assert_eq!(raw_id, id.as_str());
        let mut out = Vec::new();
        envelope::published(&mut out, topic, raw_id, Some(1));
        prop_assert_eq!(&parsed(&out)["id"], &serde_json::from_str::<Value>(&id).unwrap());
    }
}

#[test]
fn envelopes_exact_bytes() {
    let mut out = Vec::new();
    envelope::message(&mut out, "t", b"{\"a\":1}", Some(7));
    assert_eq!(
        out,
        br#"{"op":"message","topic":"t","data":{"a":1},"offset":7}"#
    );
    out.clear();
    envelope::message_binary(&mut out, "t", b"hi", None);
    assert_eq!(out, br#"{"op":"message","topic":"t","binary":"aGk="}"#);
    out.clear();
    envelope::message_text(&mut out, "t", "a\"\\\n\u{1}é", None);
    assert_eq!(
        out,
        "{\"op\":\"message\",\"topic\":\"t\",\"data\":\"a\\\"\\\\\\n\\u0001é\"}".as_bytes()
    );
    out.clear();
    let mut parser = Parser::new();
    let err = parser.parse(b"[1]").expect_err("array");
    envelope::parse_error(&mut out, &err);
    assert_eq!(
        out,
        br#"{"op":"error","code":"bad_json","message":"not a JSON object"}"#
    );
}

#[test]
fn only_one_whole_json_value_may_be_spliced_as_data() {
    for good in [&b"1"[..], b" {\"a\":[1,2]} ", b"\"s\"", b"null", b"1e400"] {
        assert!(
            envelope::is_json_value(good),
            "{}",
            String::from_utf8_lossy(good)
        );
    }
    for bad in [
        &b""[..],
        b"1,\"topic\":\"admin\"",
        b"{\"a\":1}}",
        b"[1,",
        b"\"\xff\"",
        b"1 2",
    ] {
        assert!(
            !envelope::is_json_value(bad),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
