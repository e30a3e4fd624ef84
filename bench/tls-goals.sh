#!/usr/bin/env bash
# The goals of issue 22 (docs/running.md#tls), ws:// against wss:// on one ringcast binary, each
# row on a fresh server: fan-out deliveries per server CPU-second, all-to-all rounds per
# second, TLS handshakes per server CPU-second, RSS per idle connection. A test CA and a
# leaf certificate are made here (openssl). Prints a Markdown table.
#
#   bench/tls-goals.sh [RINGCAST_BIN] [LOADTEST_BIN] [PEER_BIN]
#   (defaults: target/ci/ringcast, target/ci/loadtest, target/ci/peer)
#
# The third column is bench's tokio + tokio-tungstenite peer serving wss:// through
# tokio-rustls (`peer --tls-cert`), same certificate, 2 runtime workers.
#
# Server CPU is user+system of the server process: for the fan-out from the moment every
# subscriber is connected to the end of the run, for the other rows over the whole run. The
# client is loadtest (rustls, X25519 first, as browsers). A quiet machine gives steadier numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/ci/ringcast}
LT=${2:-target/ci/loadtest}
PEER=${3:-target/ci/peer}
DUR=${DURATION:-5s}
WORK=$(mktemp -d)
trap 'kill "$SRV" 2>/dev/null || true; rm -rf "$WORK"' EXIT
SRV=
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
  -out "$WORK/ca.pem" -days 2 -subj /CN=ringcast-bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" \
  -out "$WORK/leaf.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/cert.pem" -days 2 -extfile "$WORK/ext" 2>/dev/null

# Starts a fresh server for $scheme (ws, wss: ringcast with TLS on --listen and a plain
# listener beside it; peer: the tokio-rustls peer); sets SRV, URL and PLAIN (ringcast's plain
# listener, for /metrics).
start() {
  if [ "$scheme" = peer ]; then
    "$PEER" --listen 127.0.0.1:0 --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
      --workers 2 "$@" >"$WORK/out" 2>/dev/null &
  else
    "$BIN" --listen 127.0.0.1:0 --plain-listen 127.0.0.1:0 --tls-cert "$WORK/cert.pem" \
      --tls-key "$WORK/key.pem" --workers 2 "$@" >"$WORK/out" 2>/dev/null &
  fi
  SRV=$!
  for _ in $(seq 600); do grep -q listening "$WORK/out" && break; sleep 0.05; done
  local line; line=$(head -1 "$WORK/out")
  [[ "$line" == *listening* ]] || { echo "$scheme did not start within 30 s" >&2; exit 1; }
  PLAIN="127.0.0.1:$(sed -E 's|.* ws://[^:]+:([0-9]+)/.*|\1|' <<<"$line")"
  URL="ws://$PLAIN/"
  if [ "$scheme" != ws ]; then
    URL="wss://localhost:$(sed -E 's|.*wss://[^:]+:([0-9]+)/.*|\1|' <<<"$line")/"
  fi
}
stop() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$SRV/stat"; }
# Runs loadtest on URL ($1) with the rest as arguments; prints "server_cpu_s report_line...".
measure() {
  local url=$1; shift
  local before; before=$(cpu_s)
  "$LT" --url "$url" --ca "$WORK/ca.pem" --quiet "$@" >"$WORK/lt" 2>&1 || true
  local after; after=$(cpu_s)
  awk -v a="$after" -v b="$before" 'BEGIN{printf "%.3f", a-b}'
}
metric() { curl -s "http://$PLAIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# Fan-out, measured once every subscriber is connected (TLS handshakes are a row of their own):
# prints server deliveries per server CPU-second over the rest of the run.
fanout() {
  "$LT" --url "$URL" --ca "$WORK/ca.pem" --quiet --threads 1 --duration "$DUR" \
    broadcast --rooms 1 --subscribers 1000 --publishers 1 --size 64 >"$WORK/lt" 2>&1 &
  local lt=$!
  # 1001 clients; the /metrics request is open too.
  until [ "$(metric ringcast_connections_open)" -gt 1001 ]; do sleep 0.02; done
  local c0 d0; c0=$(cpu_s); d0=$(metric ringcast_fanout_deliveries_total)
  wait "$lt" || true
  local c1 d1; c1=$(cpu_s); d1=$(metric ringcast_fanout_deliveries_total)
  awk -v d="$((d1 - d0))" -v c1="$c1" -v c0="$c0" 'BEGIN{printf "%.0f", d/(c1-c0)}'
}
# Fan-out over the whole run (connections and TLS handshakes included), for any server:
# every message loadtest received (all phases) per server CPU-second of the run.
fanout_run() {
  local cpu; cpu=$(measure "$URL" --threads 1 --duration "$DUR" --json "$WORK/lt.json" \
    broadcast --rooms 1 --subscribers 1000 --publishers 1 --size 64)
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print("%.0f" % (r["received_per_loadtest_cpu_s"] * r["loadtest_cpu_s"] / float(sys.argv[2])))' \
    "$WORK/lt.json" "$cpu"
}
# Says so on stderr when the last loadtest run had failures (its numbers are then not a row).
failed() { if grep -q "^loadtest:" "$WORK/lt"; then echo "loadtest failed ($*):" >&2; cat "$WORK/lt" >&2; fi; }
field() { grep -E "^$1" "$WORK/lt" | head -1; }


echo "| row | ringcast ws:// | ringcast wss:// | wss / ws | tokio-rustls peer wss:// | ringcast wss / peer |"
echo "| --- | --- | --- | --- | --- | --- |"
declare -A R
for scheme in ws wss peer; do
  if [ "$scheme" != peer ]; then
    start
    R[fan_$scheme]=$(fanout)
    failed "$scheme fan-out"
    R[fanlost_$scheme]=$(field lost | awk '{print $2}')
    stop
  fi
  start
  R[fanrun_$scheme]=$(fanout_run)
  failed "$scheme fan-out (whole run)"
  stop
  start --echo
  measure "$URL" --threads 1 --duration "$DUR" rounds --clients 100 >/dev/null
  R[rounds_$scheme]=$(field rounds | awk '{print $3}' | tr -d '(/s)')
  failed "$scheme rounds"
  stop
  start
  cpu=$(measure "$URL" --threads 1 --duration 1s --warmup 0s connect --connections 2000)
  R[hs_$scheme]=$(awk -v c="$cpu" 'BEGIN{printf "%.0f", 2000/c}')
  failed "$scheme connect"
  stop
  start
  measure "$URL" --threads 1 --duration 1s --warmup 0s connect --connections 10000 --server-pid "$SRV" >/dev/null
  R[rss_$scheme]=$(field "server RSS" | sed -E 's/.*\(([-0-9.]+) KiB\/conn\).*/\1/')
  failed "$scheme idle"
  stop
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
row() { # name key
  echo "| $1 | ${R[$2_ws]:-} | ${R[$2_wss]} | $(ratio "${R[$2_wss]}" "${R[$2_ws]:-0}") | ${R[$2_peer]:--} | $(ratio "${R[$2_wss]}" "${R[$2_peer]:-0}") |"
}
row "fan-out 1×1000, 64 B, max rate: deliveries per server CPU-s once all are connected (lost: ${R[fanlost_ws]} / ${R[fanlost_wss]})" fan
row "fan-out, the same, messages received per server CPU-s over the whole run (handshakes included)" fanrun
row "all-to-all rounds/s, 100 clients (server echoes)" rounds
row "connections per server CPU-s, 2000 connects (wss: TLS 1.3 handshakes, the client resumes when it can)" hs
row "server RSS per idle connection, 10,000 connections, KiB" rss
