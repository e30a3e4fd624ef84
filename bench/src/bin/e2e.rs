//! `e2e`: the end-to-end comparison of ringcast against the reference peer (and any server given
//! with `--peer NAME=URL`). See `bench/README.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ringcast_bench::e2e::main()
}
