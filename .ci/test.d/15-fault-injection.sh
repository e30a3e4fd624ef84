#!/usr/bin/env bash
# Issue 14 row 3: a worker that fails ends the process (exit 1, a log line naming the worker).
# The failure hook exists only with the test feature `fault-injection`, so this one test runs in
# its own build (profile ci, only the server crate rebuilt) and never touches the release
# binaries the other stages use.
set -euo pipefail
cargo test -p ringcast --profile ci --features fault-injection --test hardening_lifecycle a_failed_worker
