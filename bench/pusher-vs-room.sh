#!/usr/bin/env bash
# Issue 24's goal by hand: the Pusher dialect's fan-out against room mode's, in one run on one
# ringcast process. ROUNDS times, alternately: `loadtest broadcast` (room mode) and `loadtest
# pusher` (client events on one private channel), each 1 channel × SUBS subscribers + 1
# publisher, SIZE-byte payloads, --rate 0 (window flow control). For each run: messages
# delivered, the server's CPU seconds over the loadtest run (/proc/PID/stat utime+stime,
# connect, warm-up and grace included, the same for both) and deliveries per server CPU-second;
# then the medians and their ratio (pusher / room). Prints one line per run and a summary.
# Everything it started is stopped by PID at the end.
#
#   bench/pusher-vs-room.sh [ROUNDS] [SECONDS]           (defaults 3 5)
#   env: SUBS (1000) SIZE (64) BIN (target/release; target/ci works for ratios)
set -euo pipefail
ROUNDS=${1:-3}; DUR=${2:-5}
SUBS=${SUBS:-1000}; SIZE=${SIZE:-64}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
D=$(mktemp -d "${TMPDIR:-/tmp}/pusher-vs-room.XXXX")
SPID=
cleanup() {
  [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM PIPE
cat > "$D/apps.toml" <<'TOML'
[[pusher_apps]]
id = "1"
key = "app-key"
secret = "app-secret"
client_events_per_second = 1000000000
TOML
"$BIN/ringcast" --listen 127.0.0.1:0 --config "$D/apps.toml" >"$D/out" 2>"$D/err" &
SPID=$!
for _ in $(seq 100); do grep -q "listening on" "$D/out" 2>/dev/null && break; sleep 0.05; done
URL=$(grep -o 'ws://[^ ]*' "$D/out" | head -n1)
cpu() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
TICK=$(getconf CLK_TCK)
declare -A RES
for r in $(seq "$ROUNDS"); do
  for mode in broadcast pusher; do
    before=$(cpu)
    "$BIN/loadtest" --url "$URL" --duration "${DUR}s" --quiet --json "$D/$mode-$r.json" \
      "$mode" --subscribers "$SUBS" --size "$SIZE" >/dev/null
    after=$(cpu)
    delivered=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['delivered'], r['lost'])" "$D/$mode-$r.json")
    per=$(python3 -c "import sys; d,l=map(int,sys.argv[1].split()); c=(int(sys.argv[2])-int(sys.argv[3]))/int(sys.argv[4]); print(f'{d} {l} {c:.2f} {d/c/1e6:.2f}')" "$delivered" "$after" "$before" "$TICK")
    echo "round $r $mode: delivered lost server_cpu_s M_deliveries_per_cpu_s = $per"
    RES[$mode]+="$(echo "$per" | awk '{print $4}') "
  done
done
python3 - "${RES[broadcast]}" "${RES[pusher]}" <<'PY'
import statistics, sys
room = [float(x) for x in sys.argv[1].split()]
push = [float(x) for x in sys.argv[2].split()]
mr, mp = statistics.median(room), statistics.median(push)
print(f"median M deliveries per server CPU-s: room {mr:.2f}, pusher {mp:.2f}; ratio pusher/room {mp/mr:.2f}")
PY
