//! Fixed limits of the server, in one place. Limits a deployment may want to change are settings
//! (`config.rs`, documented in `--help`); these are engineering constants whose values follow
//! from the kernel or from measurements, each with the reason for its value.

/// A closing connection (HTTP answer or Close frame flushed, waiting for the client's FIN) that
/// has not finished within this many milliseconds is cut (SHUT_RDWR, then CLOSE).
pub const LINGER_MS: u64 = 2000;

/// Receive completions in one turn that make the turn "busy": worth waiting up to
/// `--gather-us` for more completions so each socket's send carries more frames.
pub const BUSY_RECVS: usize = 4;

/// Sends issued by the previous flush that make a turn with any receive "busy" (one receive
/// fanned out to many sockets).
pub const BUSY_SENDS: u64 = 32;

/// Completions that end a gathering wait early (it normally ends on its timeout).
pub const GATHER_WANT: usize = 512;

/// Submission-queue entries of each worker's io_uring (the completion queue has 8 times as
/// many, since multishot receives and accepts post many completions per submission).
pub const RING_ENTRIES: u32 = 4096;

/// Most iovecs one WRITEV carries (the kernel's UIO_MAXIOV is 1024). A receiver with more queued
/// slices sends the rest after this send completes.
pub const MAX_IOV: usize = 512;

/// Longest room name accepted when `--rooms` is not given (docs/room-mode.md#which-room: any valid token up to 64
/// bytes).
pub const MAX_ROOM_NAME: usize = 64;

/// Largest `--max-message-bytes` accepted at start. Batches and queued slices address their
/// shared buffer with `u32` offsets; with messages this size or smaller and a turn's batches
/// flushed at `TURN_BATCH_BYTES`, a batch stays far below 4 GiB (issue 14 row 14).
pub const MAX_MESSAGE_BYTES_CAP: u64 = 1 << 30;

/// Bytes batched in one turn after which the worker delivers its batches at once instead of at
/// the end of the turn: bounds a batch (see `MAX_MESSAGE_BYTES_CAP`) and a turn's memory.
pub const TURN_BATCH_BYTES: usize = 64 << 20;

/// First pause of accepting after accept failed for lack of descriptors or memory (EMFILE,
/// ENFILE, ENOMEM, ENOBUFS); it doubles on each failure up to `ACCEPT_BACKOFF_MAX_MS`, and the
/// worker's tick re-arms accept when it is over (so the real pause is rounded up to a tick).
pub const ACCEPT_BACKOFF_MIN_MS: u64 = 50;

/// Longest pause of accepting: how long freed descriptors may wait to be used.
pub const ACCEPT_BACKOFF_MAX_MS: u64 = 1000;

/// Capacity (messages, one per source worker turn) of each worker's channel from the other
/// workers. Past it, or past `REMOTE_QUEUE_BYTES`, the target's receivers of what is dropped
/// are cut (1008) instead of the queue growing (docs/limits.md).
pub const REMOTE_QUEUE: usize = 4096;

/// Bytes of batches queued towards one worker before it counts as fallen behind: at memory
/// speed this is milliseconds of work, so only a stalled or starved worker reaches it.
pub const REMOTE_QUEUE_BYTES: usize = 16 << 20;

/// Least time between two returns of freed memory to the OS after `--max-pending-bytes` cuts
/// (each walks the worker's heap).
pub const COLLECT_EVERY_MS: u64 = 20;

/// Bytes freed by `--max-pending-bytes` cuts that are given back to the OS at once, without
/// waiting for `COLLECT_EVERY_MS`.
pub const COLLECT_FREED_BYTES: usize = 1 << 20;

/// How long a connection accepted past `--max-connections`/`--max-connections-per-ip` may take
/// to send its request head (which decides the order of refusals, docs/tokens.md#order-of-checks) before it gets its
/// 503 without it. Rounded up to the worker's tick.
pub const OVER_LIMIT_HEAD_MS: u64 = 250;

/// Pings a client may send while not taking a byte of what the server sends (its owed Pong is
/// overwritten each time) before it is closed with 1008 as a flood: collapsing bounds the
/// memory of a ping flood, this bounds its CPU.
pub const MAX_COLLAPSED_PONGS: u32 = 1024;

/// Cluster-wide presence questions (a `presence` request, or the snapshot of a `subscribe` with
/// `"presence":true`) one pub/sub connection may have waiting for Redis; past it the request
/// gets `too_many_requests`. Bounds what a client can queue on the bus, in the bridge's asks
/// and in a worker's channel without reading (issue 21 row 4).
pub const MAX_ASKS_IN_FLIGHT: usize = 16;

/// Pings answered each with its own Pong, in order, while the client takes no byte of what the
/// server sends; past it the owed Pong collapses to the latest (RFC 6455 §5.5.3). Small enough to
/// bound a flood's memory (≤ 32 × 127-byte frames), large enough that a client pinging a few
/// times in a burst (Autobahn 2.10 sends 10) gets every answer.
pub const ORDERED_PONGS: u32 = 32;
