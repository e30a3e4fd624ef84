//! One test per parse rule of docs/pubsub.md#errors, driven through the public parser.

use ringcast_pubsub::command::{Command, ErrorKind, Field, ParseError, Parser, Since};
use ringcast_pubsub::error::ErrorCode;

fn parse(input: &str) -> Result<Command<'static>, ParseError<'static>> {
    // Leak per test input: keeps assertions simple; tests only.
    let parser: &'static mut Parser = Box::leak(Box::new(Parser::new()));
    let input: &'static [u8] = Box::leak(input.as_bytes().to_vec().into_boxed_slice());
    parser.parse(input)
}

fn kind(input: &str) -> ErrorKind {
    parse(input).expect_err(input).kind
}

#[test]
fn anything_but_an_object_is_bad_json_without_id() {
    for input in [
        "",
        "   ",
        "[]",
        "[1,2]",
        "\"op\"",
        "42",
        "null",
        "true",
        "{",
        "{\"op\":}",
        "{\"op\":\"publish\"",
        "{\"op\":\"publish\"}}",
        "nope",
    ] {
        let err = parse(input).expect_err(input);
        assert_eq!(err.kind, ErrorKind::BadJson, "{input:?}");
        assert_eq!(err.kind.code(), ErrorCode::BadJson);
        assert_eq!(err.id, None, "{input:?}");
    }
}

#[test]
fn invalid_utf8_is_bad_json() {
    let mut parser = Parser::new();
    let err = parser
        .parse(b"{\"op\":\"publish\",\"topic\":\"\xff\",\"data\":1}")
        .expect_err("invalid UTF-8");
    assert_eq!(err.kind, ErrorKind::BadJson);
}

#[test]
fn missing_or_non_string_op_is_bad_field() {
    for input in [
        r#"{"topic":"t","id":1}"#,
        r#"{"op":1,"topic":"t","id":1}"#,
        r#"{"op":null,"topic":"t","id":1}"#,
        r#"{"op":["publish"],"topic":"t","id":1}"#,
    ] {
        let err = parse(input).expect_err(input);
        assert_eq!(err.kind, ErrorKind::BadField(Field::Op), "{input}");
        assert_eq!(err.kind.code(), ErrorCode::BadField);
        assert_eq!(
            err.id,
            Some("1"),
            "the id was readable, so it is echoed: {input}"
        );
    }
}

#[test]
fn unknown_op_is_unknown_op_with_id() {
    let err = parse(r#"{"op":"Publish","topic":"t","id":"x"}"#).expect_err("case matters");
    assert_eq!(err.kind, ErrorKind::UnknownOp);
    assert_eq!(err.kind.code().as_str(), "unknown_op");
    assert_eq!(err.id, Some(r#""x""#));
    // The op is checked before the topic.
    assert_eq!(kind(r#"{"op":"nope"}"#), ErrorKind::UnknownOp);
}

#[test]
fn empty_missing_or_mistyped_topic_is_bad_field() {
    for input in [
        r#"{"op":"subscribe","topic":""}"#,
        r#"{"op":"subscribe"}"#,
        r#"{"op":"publish","topic":7,"data":1}"#,
        r#"{"op":"unsubscribe","topic":null}"#,
        r#"{"op":"presence","topic":{"a":1}}"#,
    ] {
        assert_eq!(kind(input), ErrorKind::BadField(Field::Topic), "{input}");
    }
}

#[test]
fn topic_of_256_bytes_is_accepted_and_257_is_too_long() {
    let ok = format!(r#"{{"op":"subscribe","topic":"{}"}}"#, "é".repeat(128));
    assert!(matches!(parse(&ok), Ok(Command::Subscribe { topic, .. }) if topic.len() == 256));
    let long = format!(
        r#"{{"op":"subscribe","topic":"{}","id":3}}"#,
        "a".repeat(257)
    );
    let err = parse(&long).expect_err("257 bytes");
    assert_eq!(err.kind, ErrorKind::TopicTooLong);
    assert_eq!(err.kind.code().as_str(), "topic_too_long");
    assert_eq!(err.id, Some("3"));
    // The limit is on the unescaped topic: 256 × "\u0041" is 256 bytes.
    let escaped = format!(
        r#"{{"op":"subscribe","topic":"{}"}}"#,
        r"\u0041".repeat(256)
    );
    assert!(
        matches!(parse(&escaped), Ok(Command::Subscribe { topic, .. }) if topic == "A".repeat(256))
    );
}

#[test]
fn topic_is_unescaped_any_utf8() {
    let cmd = parse(r#"{"op":"unsubscribe","topic":"a/b \"c\" \u00e9\ud83d\ude00 ✓"}"#).unwrap();
    assert_eq!(
        cmd,
        Command::Unsubscribe {
            topic: "a/b \"c\" é😀 ✓",
            id: None
        }
    );
}

#[test]
fn ids_are_the_raw_json_text_numbers_and_strings() {
    for (id, _) in [
        ("1", 0),
        ("-7", 0),
        ("1.5e3", 0),
        ("18446744073709551615", 0),
        (r#""abc""#, 0),
        (r#""a\"b\u00e9\n""#, 0),
        (r#""""#, 0),
    ] {
        let input = format!(r#"{{"op":"unsubscribe", "id" :  {id} ,"topic":"t"}}"#);
        let cmd = parse(&input).expect(&input);
        assert_eq!(
            cmd,
            Command::Unsubscribe {
                topic: "t",
                id: Some(id)
            },
            "{input}"
        );
        // The same raw text parses to the same JSON value the client sent.
        let sent: serde_json::Value = serde_json::from_str(id).unwrap();
        let echoed: serde_json::Value = serde_json::from_str(match cmd {
            Command::Unsubscribe { id: Some(i), .. } => i,
            _ => unreachable!(),
        })
        .unwrap();
        assert_eq!(sent, echoed);
    }
    // Last member, no whitespace: ends right before the closing brace.
    assert_eq!(
        parse(r#"{"op":"presence","topic":"t","id":42}"#).unwrap(),
        Command::Presence {
            topic: "t",
            id: Some("42")
        }
    );
}

#[test]
fn mistyped_id_is_bad_field_without_id() {
    for id in ["true", "null", "[1]", r#"{"a":1}"#] {
        let input = format!(r#"{{"op":"publish","topic":"t","data":1,"id":{id}}}"#);
        let err = parse(&input).expect_err(&input);
        assert_eq!(err.kind, ErrorKind::BadField(Field::Id), "{input}");
        assert_eq!(err.id, None);
    }
}

#[test]
fn data_is_passed_through_byte_for_byte() {
    for data in [
        "1",
        "null",
        "-0.5e-7",
        r#""plain""#,
        r#""q\"uote \\ back\/slash \n\t\r\b\f \u0000 \u00e9 \ud83d\ude00 é 😀""#,
        r#"{"nested":{"a":[1,2,{"b":"c\"}]"}],"e":null},"f":[]}"#,
        r#"[ 1 , "two" , { "three" : [ ] } ]"#,
        r#"{}"#,
        r#"[]"#,
    ] {
        for input in [
            format!(r#"{{"op":"publish","topic":"t","data":{data}}}"#),
            format!(r#"{{"data":{data},"op":"publish","topic":"t","id":9}}"#),
            format!("{{ \"op\" : \"publish\" ,\n\t\"data\" :\r\n {data} \n, \"topic\":\"t\" }}"),
        ] {
            match parse(&input) {
                Ok(Command::Publish {
                    topic: "t",
                    data: got,
                    ..
                }) => {
                    assert_eq!(got, data, "{input}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}

#[test]
fn publish_without_data_is_bad_field() {
    let err = parse(r#"{"op":"publish","topic":"t","id":"p"}"#).expect_err("no data");
    assert_eq!(err.kind, ErrorKind::BadField(Field::Data));
    assert_eq!(err.id, Some(r#""p""#));
}

#[test]
fn subscribe_since_variants() {
    let sub = |s: &str| parse(&format!(r#"{{"op":"subscribe","topic":"t","since":{s}}}"#));
    assert_eq!(
        parse(r#"{"op":"subscribe","topic":"t"}"#).unwrap(),
        Command::Subscribe {
            topic: "t",
            id: None,
            since: None,
            presence: false
        }
    );
    assert!(matches!(
        sub(r#"{"last":50}"#),
        Ok(Command::Subscribe {
            since: Some(Since::Last(50)),
            ..
        })
    ));
    assert!(matches!(
        sub(r#"{"last":0}"#),
        Ok(Command::Subscribe {
            since: Some(Since::Last(0)),
            ..
        })
    ));
    assert!(matches!(
        sub(r#"{"offset":18446744073709551615,"epoch":"e\"1"}"#),
        Ok(Command::Subscribe {
            since: Some(Since::Offset {
                offset: u64::MAX,
                epoch: "e\"1"
            }),
            ..
        })
    ));
    assert!(matches!(
        sub(r#"{"epoch":"x","offset":0}"#),
        Ok(Command::Subscribe {
            since: Some(Since::Offset {
                offset: 0,
                epoch: "x"
            }),
            ..
        })
    ));
    for bad in [
        "1",
        "null",
        r#""last""#,
        "[]",
        "{}",
        r#"{"last":-1}"#,
        r#"{"last":1.5}"#,
        r#"{"last":"5"}"#,
        r#"{"offset":3}"#,
        r#"{"epoch":"e"}"#,
        r#"{"offset":3,"epoch":4}"#,
        r#"{"offset":-3,"epoch":"e"}"#,
        r#"{"last":1,"offset":3,"epoch":"e"}"#,
    ] {
        assert_eq!(
            sub(bad).expect_err(bad).kind,
            ErrorKind::BadField(Field::Since),
            "{bad}"
        );
    }
}

#[test]
fn subscribe_presence_flag() {
    let sub = |p: &str| {
        parse(&format!(
            r#"{{"op":"subscribe","topic":"t","presence":{p},"id":1}}"#
        ))
    };
    assert!(matches!(
        sub("true"),
        Ok(Command::Subscribe {
            presence: true,
            id: Some("1"),
            ..
        })
    ));
    assert!(matches!(
        sub("false"),
        Ok(Command::Subscribe {
            presence: false,
            ..
        })
    ));
    for bad in ["1", "\"true\"", "null"] {
        let err = sub(bad).expect_err(bad);
        assert_eq!(err.kind, ErrorKind::BadField(Field::Presence));
        assert_eq!(err.id, Some("1"));
    }
}

#[test]
fn every_op_parses() {
    assert_eq!(
        parse(r#"{"op":"unsubscribe","topic":"t","id":"u"}"#).unwrap(),
        Command::Unsubscribe {
            topic: "t",
            id: Some(r#""u""#)
        }
    );
    assert_eq!(
        parse(r#"{"op":"presence","topic":"t"}"#).unwrap(),
        Command::Presence {
            topic: "t",
            id: None
        }
    );
    assert_eq!(
        parse(r#"{"op":"publish","topic":"t","data":{"x":1}}"#).unwrap(),
        Command::Publish {
            topic: "t",
            id: None,
            data: r#"{"x":1}"#
        }
    );
}

#[test]
fn unknown_fields_are_ignored_and_duplicates_take_the_last() {
    assert_eq!(
        parse(r#"{"op":"publish","extra":{"deep":[{"x":"}"}]},"topic":"a","topic":"b","data":1,"data":[2]}"#)
            .unwrap(),
        Command::Publish { topic: "b", id: None, data: "[2]" }
    );
}

#[test]
fn keys_are_compared_unescaped() {
    assert_eq!(
        parse(r#"{"\u006fp":"publish","topic":"t","d\u0061ta":"x"}"#).unwrap(),
        Command::Publish {
            topic: "t",
            id: None,
            data: r#""x""#
        }
    );
}

#[test]
fn one_parser_serves_many_messages_of_any_size() {
    let mut parser = Parser::with_capacity(16);
    let big = format!(
        r#"{{"op":"publish","topic":"t","data":"{}"}}"#,
        "x".repeat(10_000)
    );
    for round in 0..3 {
        let small = format!(r#"{{"op":"publish","topic":"t","data":{round}}}"#);
        match parser.parse(small.as_bytes()) {
            Ok(Command::Publish { data, .. }) => assert_eq!(data, round.to_string()),
            other => panic!("{other:?}"),
        }
        assert!(
            parser.parse(b"{\"op\":").is_err(),
            "errors leave the parser usable"
        );
        match parser.parse(big.as_bytes()) {
            Ok(Command::Publish { data, .. }) => assert_eq!(data.len(), 10_002),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn input_is_not_modified() {
    let input = br#"{"op":"publish","topic":"t\n","data":"a\"b\u00e9"}"#.to_vec();
    let copy = input.clone();
    let mut parser = Parser::new();
    assert!(parser.parse(&input).is_ok());
    assert_eq!(input, copy);
}

/// Issue 21 row 12: simd-json decodes a high surrogate escape that is not followed by a low one
/// as U+0000 (upstream simd-json #481), so `"\ud800"` and `"\u0000"` would name one topic. A lone
/// surrogate names nothing (it is not Unicode): the request is refused as `bad_field`, its id echoed.
#[test]
fn lone_surrogate_in_a_name_is_bad_field_not_nul() {
    // "\u0000" is a real (if odd) topic and stays one.
    assert_eq!(
        parse(r#"{"op":"subscribe","topic":"\u0000"}"#).unwrap(),
        Command::Subscribe {
            topic: "\0",
            id: None,
            since: None,
            presence: false
        }
    );
    for topic in [
        r"\ud800",
        r"\uD800",
        r"\udbff",
        r"a\ud800b",
        r"\ud800\n",
        r"\ud83d\ude00\ud800",
        r"\u0000\ud800",
        r"\\\ud800",
    ] {
        for op in ["subscribe", "unsubscribe", "publish", "presence"] {
            let input = format!(r#"{{"op":"{op}","topic":"{topic}","id":5,"data":1}}"#);
            let err = parse(&input).expect_err(&input);
            assert_eq!(err.kind.code(), ErrorCode::BadField, "{input}");
            assert_eq!(err.id, Some("5"), "{input}");
            assert!(err.kind.message().contains("surrogate"), "{input}");
        }
    }
    // The epoch names a history too: `"\ud800"` must not match an epoch "\u0000".
    let err = parse(r#"{"op":"subscribe","topic":"t","since":{"offset":1,"epoch":"\ud800"}}"#)
        .expect_err("lone surrogate epoch");
    assert_eq!(err.kind.code(), ErrorCode::BadField);
    // Escaped backslashes before a `u` are not escapes; a surrogate pair is fine.
    assert_eq!(
        parse(r#"{"op":"unsubscribe","topic":"\\ud800 \ud83d\ude00 \u0000"}"#).unwrap(),
        Command::Unsubscribe {
            topic: "\\ud800 😀 \0",
            id: None
        }
    );
    // Raw JSON passed through (id, data) is the client's own text and is left alone.
    assert_eq!(
        parse(r#"{"op":"publish","topic":"t","id":"\ud800","data":"\ud800"}"#).unwrap(),
        Command::Publish {
            topic: "t",
            id: Some(r#""\ud800""#),
            data: r#""\ud800""#
        }
    );
}

/// Issue 21 row 12: any JSON number is a valid id (docs/pubsub.md#requests), including ones no f64 or u64 holds;
/// the id is echoed as its raw text, so its size does not matter. The same goes for `data`.
#[test]
fn any_json_number_is_an_id_and_data_even_out_of_range() {
    let huge = [
        "1e400",
        "-1e400",
        "1E+999",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "1.5e308000",
        "1e-400",
        "123456789012345678901234567890.5",
    ];
    for n in huge {
        for input in [
            format!(r#"{{"op":"unsubscribe","id":{n},"topic":"t"}}"#),
            format!(r#"{{"op":"unsubscribe","topic":"t","id":{n}}}"#),
            format!(r#"{{"op":"unsubscribe","topic":"t","id": {n} }}"#),
        ] {
            assert_eq!(
                parse(&input).expect(&input),
                Command::Unsubscribe {
                    topic: "t",
                    id: Some(n)
                },
                "{input}"
            );
        }
        // Errors about such a request still echo its id.
        let input = format!(r#"{{"op":"nope","id":{n}}}"#);
        assert_eq!(parse(&input).expect_err(&input).id, Some(n), "{input}");
        // Out-of-range numbers anywhere in data pass through byte for byte.
        let data = format!(r#"[{n},{{"k":{n}}},"{n}",{n}]"#);
        let input = format!(r#"{{"op":"publish","topic":"t","data":{data},"id":{n}}}"#);
        assert_eq!(
            parse(&input).expect(&input),
            Command::Publish {
                topic: "t",
                id: Some(n),
                data: &data
            },
            "{input}"
        );
        // since takes integers a u64 holds: anything else is bad_field, not a silent 0.
        for since in [
            format!(r#"{{"last":{n}}}"#),
            format!(r#"{{"offset":{n},"epoch":"e"}}"#),
        ] {
            let input = format!(r#"{{"op":"subscribe","topic":"t","since":{since}}}"#);
            assert_eq!(
                parse(&input).expect_err(&input).kind,
                ErrorKind::BadField(Field::Since),
                "{input}"
            );
        }
        // A number that is out of range AND malformed JSON elsewhere is still bad_json.
        let input = format!(r#"{{"op":"unsubscribe","topic":"t","id":{n},}}"#);
        assert_eq!(kind(&input), ErrorKind::BadJson, "{input}");
    }
    // Malformed numbers are still bad_json.
    for n in [
        "01", "1.", "-", "1e", "+1", ".5", "1e+", "0x10", "Infinity", "NaN", "1_0",
    ] {
        let input = format!(r#"{{"op":"unsubscribe","topic":"t","id":{n}}}"#);
        assert_eq!(kind(&input), ErrorKind::BadJson, "{input}");
    }
}

#[test]
fn refresh_needs_a_non_empty_string_token_and_no_topic() {
    assert_eq!(
        parse(r#"{"op":"refresh","id":7,"token":"a.b\u002ec"}"#),
        Ok(Command::Refresh {
            id: Some("7"),
            token: "a.b.c"
        })
    );
    for input in [
        r#"{"op":"refresh","id":7}"#,
        r#"{"op":"refresh","id":7,"token":""}"#,
        r#"{"op":"refresh","id":7,"token":1}"#,
    ] {
        let err = parse(input).expect_err(input);
        assert_eq!(err.kind, ErrorKind::BadField(Field::Token), "{input}");
        assert_eq!(err.id, Some("7"));
    }
}
