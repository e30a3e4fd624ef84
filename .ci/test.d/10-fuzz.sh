#!/usr/bin/env bash
# Every fuzz target for 30 s (two at a time, one per core); fails on a crash, panic or hang.
set -euo pipefail
export CARGO_TARGET_DIR="$PWD/target/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# Build once, then run the targets in two parallel lanes.
(cd protocol/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build >/dev/null)
bash protocol/fuzz/run.sh 30 decoder handshake > target/fuzz-lane1.log 2>&1 & lane1=$!
bash protocol/fuzz/run.sh 30 mask utf8 > target/fuzz-lane2.log 2>&1 & lane2=$!
rc=0
wait "$lane1" || rc=1
wait "$lane2" || rc=1
grep -hE "^== fuzz|^Done [0-9]+ runs|^!!" target/fuzz-lane1.log target/fuzz-lane2.log || true
if [ "$rc" -ne 0 ]; then
  tail -n 60 target/fuzz-lane1.log target/fuzz-lane2.log
  echo "fuzzing found a failure (reproducers under protocol/fuzz/artifacts/)"
fi
exit "$rc"
