//! `ringcast`: the io_uring thread-per-core WebSocket server.

fn main() {}
