#!/usr/bin/env bash
# Autobahn TestSuite (golden file), Python websockets and Node ws interop, headless Chromium.
set -euo pipefail
cargo build --release -p ringcast
RINGCAST_BIN=target/release/ringcast bash conformance/run-all.sh --install
