#!/bin/bash
# Server CPU per delivery of the server API's load (issue 23): one ringcast worker, 100 channels
# × 10 subscribers, 1 publisher per channel, publishing through the API (`api`) or over
# WebSocket (`ws`), at max rate (RATE 0) or RATE publishes/s per publisher.
#
#   bench/api-cost.sh SERVER_BIN api|ws [RATE] [extra loadtest args, e.g. --window 512]
#
# Prints the server's CPU ticks (utime+stime from /proc, whole run: warm-up, measured time and
# grace) and the deliveries per server CPU-second over that same run, then loadtest's summary.
# API=listen makes the publishers use the server's --api-listen address (`--api-url`).
# DUR sets the measured time (default 10s). Needs target/ci/loadtest (or LOADTEST=path).
set -euo pipefail
BIN=$1
MODE=$2
RATE=${3:-0}
shift $(($# < 3 ? $# : 3))
LT=${LOADTEST:-$(dirname "$0")/../target/ci/loadtest}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port)
APORT=$(free_port)
LOG=$(mktemp)
OUT=$(mktemp)
"$BIN" --listen 127.0.0.1:"$PORT" --api-listen 127.0.0.1:"$APORT" --workers 1 --api-key k >"$LOG" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null || true; rm -f "$LOG" "$OUT"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
ticks() { awk '{print $14+$15}' /proc/"$SP"/stat; }
t0=$(ticks)
if [ "$MODE" = api ]; then
  SC=(api --api-key k)
  if [ "${API:-}" = listen ]; then SC+=(--api-url "http://127.0.0.1:$APORT"); fi
else
  SC=(pubsub)
fi
"$LT" --url "ws://127.0.0.1:$PORT/" --threads 1 "${SC[@]}" --topics 100 --subscribers 10 \
  --publishers 1 --duration "${DUR:-10s}" --warmup 2s --rate "$RATE" "$@" >"$OUT" 2>&1
t1=$(ticks)
total=$(grep -o "total sent [0-9]* recv [0-9]*" "$OUT" | tail -1 | awk '{print $5}')
echo "server CPU ticks $((t1 - t0)) ($(getconf CLK_TCK)/s); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "deliveries $total; per server CPU-s $((total * $(getconf CLK_TCK) / (t1 - t0)))"
grep -E "^(sent|delivered|latency|lost)" "$OUT"
