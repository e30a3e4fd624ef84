//! Unit tests of `conn::outq` (in a file of their own: the queue's file stays short).

use super::*;

fn shared(bytes: &[u8]) -> Arc<[u8]> {
    Arc::from(bytes)
}

#[test]
fn partial_writes_resume_inside_the_front_chunk() {
    let mut q = OutQueue::new();
    let frames = shared(b"abcdef");
    q.push_shared(&frames, 0, 6);
    q.push_owned(b"XYZ".to_vec());
    assert_eq!(q.unsent(), 9);
    assert!(q.start_send(-1, 0).is_some());
    assert!(q.start_send(-1, 0).is_none(), "one send at a time");
    assert_eq!(q.iovecs(), vec![&b"abcdef"[..], b"XYZ"]);
    assert!(q.sent(4));
    assert_eq!(q.unsent(), 5);
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(q.iovecs(), vec![&b"ef"[..], b"XYZ"]);
    assert!(q.sent(3));
    assert_eq!(q.pending(), b"YZ");
    assert!(q.start_send(-1, 0).is_some());
    assert!(!q.sent(2));
    assert!(q.is_empty() && q.unsent() == 0);
}

#[test]
fn dropping_unsent_keeps_the_in_flight_prefix() {
    let mut q = OutQueue::new();
    let frames = shared(b"0123456789");
    q.push_shared(&frames, 0, 4);
    q.push_shared(&frames, 4, 10);
    assert!(q.start_send(-1, 0).is_some());
    q.push_owned(b"late".to_vec());
    q.push_owned(b"later".to_vec());
    q.drop_unsent();
    assert_eq!(q.unsent(), 10, "both in-flight chunks kept");
    assert_eq!(q.iovecs(), vec![&b"0123"[..], b"456789"]);
    assert!(!q.sent(10));
}

#[test]
fn dropping_unsent_keeps_a_partly_sent_frame_whole() {
    let mut q = OutQueue::new();
    q.push_owned(b"frame-one".to_vec());
    q.push_owned(b"frame-two".to_vec());
    assert!(q.start_send(-1, 0).is_some());
    assert!(q.sent(3));
    // Not in flight now, but the client has the first 3 bytes of frame-one.
    q.drop_unsent();
    assert_eq!(q.pending(), b"me-one");
    assert_eq!(q.unsent(), 6);
    q.drop_unsent();
    assert_eq!(q.pending(), b"me-one", "idempotent");
}

#[test]
fn dropping_unsent_with_nothing_sent_empties_the_queue() {
    let mut q = OutQueue::new();
    q.push_owned(b"a".to_vec());
    q.push_frame(OpCode::Pong, b"p");
    q.drop_unsent();
    assert!(q.is_empty());
    assert_eq!(q.unsent(), 0);
}

#[test]
fn a_close_queued_behind_data_leaves_after_it() {
    let mut q = OutQueue::new();
    let frames = shared(b"\x81\x02hi");
    q.push_shared(&frames, 0, 4);
    q.push_close(CloseCode::POLICY, "");
    assert_eq!(q.unsent(), 8, "the Close counts too");
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(q.iovecs(), vec![&b"\x81\x02hi"[..], b"\x88\x02\x03\xf0"]);
    assert!(!q.sent(8));
}

#[test]
fn backpressure_drop_then_close_sends_the_whole_frame_then_the_close() {
    let mut q = OutQueue::new();
    let frames = shared(b"\x81\x03abc\x81\x03def");
    q.push_shared(&frames, 0, 10);
    assert!(q.start_send(-1, 0).is_some());
    q.push_shared(&frames, 5, 10);
    assert!(q.sent(7)); // mid-frame of the second frame
    q.drop_unsent();
    q.push_close(CloseCode::POLICY, "");
    assert_eq!(q.pending(), b"def\x88\x02\x03\xf0");
}

#[test]
fn the_first_pongs_keep_their_order_with_other_frames() {
    let mut q = OutQueue::new();
    assert!(q.set_pong(b"a"));
    q.push_owned(b"msg".to_vec());
    assert!(q.set_pong(b"b"));
    assert_eq!(q.pending(), b"\x8a\x01amsg\x8a\x01b");
}

#[test]
fn owed_pongs_collapse_to_the_latest_and_leave_before_a_close() {
    let mut q = OutQueue::new();
    q.push_owned(b"head".to_vec());
    assert!(q.start_send(-1, 0).is_some()); // the client never reads: stays in flight
    for i in 0..ORDERED_PONGS {
        assert!(q.set_pong(&[i as u8]), "answered in order");
    }
    let ordered = ORDERED_PONGS as usize * 3;
    assert!(q.set_pong(b"1"));
    for i in 0..1000u32 {
        assert!(!q.set_pong(&i.to_be_bytes()));
    }
    assert_eq!(
        q.unsent(),
        4 + ordered + 6,
        "one Pong owed, whatever the flood"
    );
    assert!(q.sent(4 + ordered), "the owed Pong is still to send");
    q.push_close(CloseCode::NORMAL, "");
    assert_eq!(q.pending(), b"\x8a\x04\x00\x00\x03\xe7\x88\x02\x03\xe8");
    q.drop_unsent();
    assert!(q.is_empty() && q.unsent() == 0);
}

#[test]
fn at_most_max_iov_chunks_per_send() {
    let mut q = OutQueue::new();
    for _ in 0..MAX_IOV + 3 {
        q.push_owned(vec![1]);
    }
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(q.iovecs().len(), MAX_IOV);
    assert!(q.sent(MAX_IOV));
    assert_eq!(q.unsent(), 3);
}
#[test]
fn a_hold_blocks_later_chunks_until_filled_then_they_follow_it() {
    let mut q = OutQueue::new();
    q.push_owned(b"subscribed".to_vec());
    let hold = q.hold();
    let frames = shared(b"replay-live");
    q.push_shared(&frames, 0, 6);
    q.push_shared(&frames, 6, 11);
    assert_eq!(q.unsent(), 21, "what waits behind the hold counts");
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(
        q.iovecs(),
        vec![&b"subscribed"[..]],
        "the send stops at the hold"
    );
    assert!(q.sent(10), "bytes remain behind the hold");
    assert!(
        q.start_send(-1, 0).is_none(),
        "nothing sendable before the fill"
    );
    assert!(q.fill(hold, b"snapshot".to_vec()));
    assert_eq!(q.unsent(), 19);
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(q.iovecs(), vec![&b"snapshot"[..], b"replay", b"-live"]);
    assert!(!q.sent(19));
    assert!(q.is_empty());
    assert!(!q.fill(hold, b"again".to_vec()), "a hold fills once");
}

#[test]
fn holds_fill_out_of_order_but_release_in_queue_order() {
    let mut q = OutQueue::new();
    let first = q.hold();
    q.push_owned(b"a".to_vec());
    let second = q.hold();
    q.push_owned(b"b".to_vec());
    assert!(q.fill(second, b"2".to_vec()));
    assert!(q.start_send(-1, 0).is_none(), "the first hold still blocks");
    assert!(q.fill(first, Vec::new()), "an empty fill releases");
    assert!(q.start_send(-1, 0).is_some());
    assert_eq!(q.iovecs(), vec![&b"a"[..], b"2", b"b"]);
    assert!(!q.sent(3));
}

#[test]
fn a_close_with_a_hold_pending_is_sent_after_what_precedes_the_hold() {
    let mut q = OutQueue::new();
    q.push_owned(b"subscribed".to_vec());
    let hold = q.hold();
    q.push_owned(b"live".to_vec());
    assert!(q.set_pong(b"p"), "an ordered pong, queued behind the hold");
    q.push_close(CloseCode::NORMAL, "");
    assert_eq!(q.pending(), b"subscribed\x88\x02\x03\xe8");
    assert_eq!(q.unsent(), 14);
    assert!(q.start_send(-1, 0).is_some());
    assert!(!q.sent(14), "nothing waits for the hold any more");
    assert!(
        !q.fill(hold, b"late".to_vec()),
        "the hold went with the Close"
    );
    assert!(q.is_empty() && q.unsent() == 0);

    // The same through `push_frame` (a Close without a code), and after a backpressure cut.
    let mut q = OutQueue::new();
    let _ = q.hold();
    q.push_owned(b"x".to_vec());
    q.push_frame(OpCode::Close, b"");
    assert_eq!(q.pending(), b"\x88\x00");
    let mut q = OutQueue::new();
    q.push_owned(b"sent".to_vec());
    assert!(q.start_send(-1, 0).is_some());
    let hold = q.hold();
    q.push_owned(b"x".to_vec());
    q.drop_unsent();
    q.push_close(CloseCode::POLICY, "");
    assert_eq!(q.pending(), b"sent\x88\x02\x03\xf0");
    assert!(!q.fill(hold, b"late".to_vec()));
    assert!(!q.sent(8));
}

#[test]
fn bytes_behind_a_hold_count_towards_backpressure_and_a_cut_drops_them() {
    let mut q = OutQueue::new();
    let hold = q.hold();
    let frames = shared(&[7u8; 1000]);
    for _ in 0..100 {
        q.push_shared(&frames, 0, 1000);
    }
    assert_eq!(
        q.unsent(),
        100_000,
        "a long wait on a busy topic grows the backlog"
    );
    assert!(q.start_send(-1, 0).is_none());
    q.drop_unsent();
    assert_eq!(q.unsent(), 0);
    assert!(q.is_empty());
    assert!(!q.fill(hold, b"snapshot".to_vec()));
    q.push_owned(b"after".to_vec());
    assert!(q.start_send(-1, 0).is_some(), "no hold left to wait for");
}
