#!/usr/bin/env bash
# Criterion micro-benchmarks in test mode (each benchmark runs once) so they cannot rot.
# Real numbers: cargo bench -p ringcast-bench
set -euo pipefail
cargo bench -p ringcast-bench --benches -- --test
