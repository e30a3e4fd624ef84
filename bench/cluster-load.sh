#!/usr/bin/env bash
# Issue 16's goal measurements by hand: a redis-server on a free port (--save ''), NODES ringcast
# nodes × WORKERS workers clustered through it (one node without --cluster when NODES=1), and one
# `loadtest broadcast` over all of them: ROOMS rooms × SUBS subscribers + 1 publisher each,
# RATE msgs/s in total. Prints one line: sent/s, delivered/s, lost (+ at server-closed receivers),
# duplicates, reordered, latency overall / same-node / cross-node (µs), redis-server's and the
# nodes' CPU (% of one core, /proc/PID/stat utime+stime over the loadtest run), then each node's
# ringcast_cluster_* counters and Redis's PUBLISH call count. Everything it started is stopped by
# PID at the end.
#
#   bench/cluster-load.sh RATE [SECONDS] [NODES] [WORKERS]      (defaults 5000 10 3 1)
#   env: ROOMS (100) SUBS (30) WINDOW (loadtest --window, 64; 1000000 = no flow control)
#        LT_THREADS (loadtest --threads) PIN=1 (keep ringcast's worker pinning with several nodes:
#        by default they get --no-pin, since pinned 1-worker nodes would all sit on the first
#        allowed CPU) BIN (target/release) KEEP=1
set -euo pipefail
RATE=${1:-5000}; DUR=${2:-10}; NODES=${3:-3}; W=${4:-1}
ROOMS=${ROOMS:-100}; SUBS=${SUBS:-30}; WINDOW=${WINDOW:-64}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
D=$(mktemp -d "${TMPDIR:-/tmp}/cluster-load.XXXX")
PIDS=()
RPID=
cleanup() {
  for p in "${PIDS[@]}" $RPID; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$D"; else echo "logs: $D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM PIPE

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$NODES" -gt 1 ]; then
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$D/redis.log" 2>&1 &
  RPID=$!
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
URLS=()
for n in $(seq "$NODES"); do
  CL=()
  [ "$NODES" -gt 1 ] && CL=(--cluster "redis://127.0.0.1:$PORT" --node-id "n$n")
  [ "$NODES" -gt 1 ] && [ -z "${PIN:-}" ] && CL+=(--no-pin)
  "$BIN/ringcast" --listen 127.0.0.1:0 --workers "$W" "${CL[@]}" >"$D/n$n.log" 2>&1 &
  PIDS+=($!)
done
for n in $(seq "$NODES"); do
  u=
  for _ in $(seq 100); do
    u=$(grep -o 'ws://[0-9.:]*/' "$D/n$n.log" | head -1 || true)
    [ -n "$u" ] && break
    sleep 0.1
  done
  [ -n "$u" ] || { echo "node $n did not start: $D/n$n.log" >&2; exit 2; }
  URLS+=(--url "$u")
done
cpu() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
sum_cpu() { local s=0; for p in "${PIDS[@]}"; do s=$((s + $(cpu "$p"))); done; echo "$s"; }
R0=$(cpu "$RPID"); S0=$(sum_cpu); T0=$(date +%s.%N)
PER=$(( (RATE + ROOMS / 2) / ROOMS )); [ "$PER" -lt 1 ] && PER=1
set +e
"$BIN/loadtest" "${URLS[@]}" ${LT_THREADS:+--threads "$LT_THREADS"} --quiet broadcast \
  --rooms "$ROOMS" --subscribers "$SUBS" --publishers 1 --rate "$PER" --window "$WINDOW" \
  --duration "${DUR}s" --warmup 2s --grace 3s --json "$D/lt.json" >"$D/lt.txt" 2>&1
RC=$?
set -e
T1=$(date +%s.%N); R1=$(cpu "$RPID"); S1=$(sum_cpu)
python3 - "$D/lt.json" "$R0" "$R1" "$S0" "$S1" "$T0" "$T1" "$(getconf CLK_TCK)" "$RC" "$RATE" <<'PY'
import json, sys
path, r0, r1, s0, s1, t0, t1, hz, rc, rate = sys.argv[1:]
wall, hz = float(t1) - float(t0), float(hz)
j = json.load(open(path))
def lat(l):
    return "p50 %.0f p99 %.0f max %.0f n=%d" % (l["p50_us"], l["p99_us"], l["max_us"], l["samples"]) if l else "-"
print("rate %s rc %s sent/s %.0f deliv/s %.0f lost %d (+%d closed) dup %d reord %d | all %s | same %s | cross %s"
      " | redis %.1f%% servers %.1f%% (wall %.1fs)" % (
    rate, rc, j["sent_per_s"], j["delivered_per_s"], j["lost"], j["lost_at_closed_receivers"],
    j["duplicates"], j["reordered"], lat(j["latency"]), lat(j.get("latency_same_node")),
    lat(j.get("latency_cross_node")), (float(r1) - float(r0)) / hz / wall * 100,
    (float(s1) - float(s0)) / hz / wall * 100, wall))
PY
for ((i = 1; i < ${#URLS[@]}; i += 2)); do
  h=${URLS[$i]#ws://}; h=${h%/}
  curl -s "http://$h/metrics" | grep -E '^ringcast_cluster_(published|received|dropped|gaps)' | tr '\n' ' ' || true
  echo
done
[ -n "$RPID" ] && redis-cli -p "$PORT" info commandstats | grep -E '^cmdstat_publish' || true
