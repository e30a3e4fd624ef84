#!/usr/bin/env bash
# End-to-end comparison, quick form: ringcast (1 and 2 workers) against the tokio reference peer
# on every scenario of bench/README.md (and the cluster row: 3 nodes + redis-server vs 1 node),
# ~2 s per run. Fails on errors and lost messages, never on a speed number. Prints the report.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
cargo run --release -p ringcast-bench --bin e2e -- --quick || status=$?
cat target/e2e/report.md 2>/dev/null || echo "no report written"
exit "$status"
