//! `loadtest`: drives any RFC 6455 server and reports throughput and latency.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    eprintln!("loadtest: not implemented yet");
    std::process::exit(2);
}
