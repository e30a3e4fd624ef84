//! Room semantics with a third-party client (tungstenite): isolation, no echo, ordering,
//! large payloads, and fan-out across workers.

mod common;

use common::{Raw, Server, text};
use tungstenite::Message;

#[test]
fn seed_handshake_chooses_chat() {
    let server = Server::start(&[]);
    let (_raw, head) = Raw::connect(&server, Some("chat, superchat"), b"");
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"), "{head}");
}

#[test]
fn no_subprotocol_joins_the_default_room_without_the_header() {
    let server = Server::start(&["--default-room", "hall"]);
    let (_raw, head) = Raw::connect(&server, None, b"");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    let mut a = server.join(None);
    let mut b = server.join(Some("hall"));
    a.send(Message::text("to the hall")).unwrap();
    assert_eq!(text(&mut b), "to the hall");
}

#[test]
fn rooms_are_isolated_and_senders_get_no_echo() {
    let server = Server::start(&[]);
    let mut a1 = server.join(Some("alpha"));
    let mut a2 = server.join(Some("alpha"));
    let mut b1 = server.join(Some("beta"));
    let mut b2 = server.join(Some("beta"));
    a1.send(Message::text("for alpha")).unwrap();
    assert_eq!(text(&mut a2), "for alpha");
    // If beta or a sender had received anything else ("for alpha", or its own message), it
    // would come before these markers: each is the first message its receiver sees.
    b1.send(Message::text("beta marker")).unwrap();
    assert_eq!(text(&mut b2), "beta marker");
    a2.send(Message::text("alpha marker")).unwrap();
    assert_eq!(text(&mut a1), "alpha marker");
    b2.send(Message::text("second beta")).unwrap();
    assert_eq!(text(&mut b1), "second beta");
}

#[test]
fn echo_flag_returns_messages_to_the_sender() {
    let server = Server::start(&["--echo"]);
    let mut a = server.join(Some("solo"));
    a.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(a.read().unwrap(), Message::binary(vec![1, 2, 3]));
}

#[test]
fn delivery_metrics_count_each_member_with_and_without_echo() {
    for (args, expected) in [(&["--echo"][..], 20), (&[][..], 10)] {
        let server = Server::start(args);
        let mut a = server.join(Some("count"));
        let mut b = server.join(Some("count"));
        for i in 0..10 {
            a.send(Message::text(format!("m{i}"))).unwrap();
        }
        for i in 0..10 {
            assert_eq!(text(&mut b), format!("m{i}"));
            if expected == 20 {
                assert_eq!(text(&mut a), format!("m{i}"));
            }
        }
        for name in [
            "ringcast_fanout_deliveries_total",
            "ringcast_messages_out_total",
        ] {
            assert_eq!(server.metric(name), expected, "{name} with {args:?}");
        }
    }
}

#[test]
fn binary_payloads_up_to_one_mebibyte_arrive_intact() {
    let server = Server::start(&[]);
    let mut a = server.join(Some("bin"));
    let mut b = server.join(Some("bin"));
    for size in [0usize, 1, 125, 126, 65535, 65536, 300_000, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
        a.send(Message::binary(payload.clone())).unwrap();
        match b.read().unwrap() {
            Message::Binary(got) => assert!(got[..] == payload[..], "size {size}"),
            other => panic!("size {size}: {other:?}"),
        }
    }
}

#[test]
fn ten_thousand_messages_arrive_complete_and_in_order() {
    let server = Server::start(&[]);
    let mut a = server.join(Some("seq"));
    let mut b = server.join(Some("seq"));
    let sender = std::thread::spawn(move || {
        for i in 0..10_000u32 {
            a.write(Message::text(format!("m{i}"))).unwrap();
        }
        a.flush().unwrap();
        a
    });
    for i in 0..10_000u32 {
        assert_eq!(text(&mut b), format!("m{i}"));
    }
    drop(sender.join().unwrap());
}

#[test]
fn a_thousand_members_across_workers_all_receive_every_message() {
    let server = Server::start(&["--workers", "2"]);
    let mut members: Vec<_> = (0..1000).map(|_| server.join(Some("big"))).collect();
    let mut sender = server.join(Some("big"));
    for i in 0..5 {
        sender.send(Message::text(format!("to all {i}"))).unwrap();
    }
    for (n, m) in members.iter_mut().enumerate() {
        for i in 0..5 {
            assert_eq!(text(m), format!("to all {i}"), "member {n}");
        }
    }
    assert_eq!(server.metric("ringcast_fanout_deliveries_total"), 5000);
    assert!(
        server.metric("ringcast_fanout_remote_batches_total") > 0,
        "members should be spread over both workers"
    );
}

#[test]
fn concurrent_senders_get_each_other_in_order_and_never_themselves() {
    let server = Server::start(&["--workers", "1"]);
    let mut a = server.join(Some("duo"));
    let mut b = server.join(Some("duo"));
    let mut watcher = server.join(Some("duo"));
    const N: usize = 2000;
    // Each sender writes from its own thread while its socket is read on another, so many
    // frames of both land in the same server turn (one shared batch with both senders' spans).
    let ta = std::thread::spawn(move || {
        for i in 0..N {
            a.write(Message::text(format!("a{i}"))).unwrap();
        }
        a.flush().unwrap();
        let mut got = Vec::new();
        while got.len() < N {
            got.push(text(&mut a));
        }
        got
    });
    let tb = std::thread::spawn(move || {
        for i in 0..N {
            b.write(Message::text(format!("b{i}"))).unwrap();
        }
        b.flush().unwrap();
        let mut got = Vec::new();
        while got.len() < N {
            got.push(text(&mut b));
        }
        got
    });
    let (mut na, mut nb) = (0, 0);
    for _ in 0..2 * N {
        let m = text(&mut watcher);
        if let Some(i) = m.strip_prefix('a') {
            assert_eq!(i.parse::<usize>().unwrap(), na);
            na += 1;
        } else {
            assert_eq!(m, format!("b{nb}"));
            nb += 1;
        }
    }
    let got_a = ta.join().unwrap();
    let got_b = tb.join().unwrap();
    assert_eq!(got_a, (0..N).map(|i| format!("b{i}")).collect::<Vec<_>>());
    assert_eq!(got_b, (0..N).map(|i| format!("a{i}")).collect::<Vec<_>>());
}
