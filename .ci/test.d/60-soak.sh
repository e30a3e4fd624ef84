#!/usr/bin/env bash
# Issue 14 soak, the 60-second version: a well-behaved `loadtest broadcast` while hostile clients
# (garbage, ping floods, slowloris, half-closes, oversize and fragmented messages, a connect flood
# to the fd limit) hit the same release server. Fails on a lost copy, a cut well-behaved client,
# a crash, peak RSS, worker CPU at the fd limit or accept-failure log rate (loadtest/README.md).
set -euo pipefail
bash loadtest/soak.sh 60
