#!/usr/bin/env bash
# Cluster soak (issue 21 item 5): a redis-server and two release ringcast nodes clustered through
# it (docs/cluster.md), JSON pub/sub with history and presence on both nodes, subscribers dropped
# and resumed (`--churn`) and unsubscribed and resumed (`--unsubscribe-churn`), and in the middle
# the redis-server killed (SIGKILL, by PID) and started again on the same port. See
# loadtest/README.md, "Cluster soak".
#
#   loadtest/cluster-soak.sh [SECONDS]          default 60
#
# Environment: SOAK_NO_BUILD=1 (use the binaries already in target/release), CSOAK_RSS_BOUND_MIB
# (peak RSS allowed per node, default 128), CSOAK_TOPICS / CSOAK_SUBS / CSOAK_RATE (topics,
# subscribers per topic, msgs/s per publisher; defaults 8, 10, 20), SOAK_DIR (keep logs there).
# Fails (exit 1) when:
#   - the loadtest fails: a `recovered:true` resume not continuing at exactly offset+1 with no
#     hole or duplicate, different messages at one offset, offsets going backwards other than
#     a new epoch's restart at 1, a presence snapshot missing or out of place, a connection lost;
#   - a subscriber the server did not close lost a copy from a publisher on its own node, or an
#     offset gap (a node's history has no holes, docs/pubsub.md#history);
#   - on a node, more distinct messages of the other node were missing at its subscribers than its
#     `ringcast_cluster_gaps_total` grew by (docs/cluster.md#gaps: every cross-node loss counted);
#   - a node's peak RSS passed the bound, a node crashed, or its drain did not exit 0.
set -uo pipefail

DURATION=${1:-60}
RSS_BOUND=${CSOAK_RSS_BOUND_MIB:-128}
TOPICS=${CSOAK_TOPICS:-8}
SUBS=${CSOAK_SUBS:-10}
RATE=${CSOAK_RATE:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
LOADTEST=${LOADTEST:-$BIN/loadtest}
DIR=${SOAK_DIR:-$(mktemp -d /tmp/ringcast-cluster-soak.XXXXXX)}
mkdir -p "$DIR"

if [[ -z ${SOAK_NO_BUILD:-} ]]; then
    cargo build --release --quiet -p ringcast -p loadtest --manifest-path "$ROOT/Cargo.toml" || exit 2
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RPID=
NPIDS=()
LT=
MON=
cleanup() {
    for p in $LT $MON "${NPIDS[@]}" $RPID; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        >>"$DIR/redis.log" 2>&1 &
    RPID=$!
    # Up to 30 s (here and for the nodes below): a loaded CI machine can be slow to start one.
    for _ in $(seq 300); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "cluster soak: redis-server did not start on port $PORT"; exit 2
}
start_redis

URLS=()
ADDRS=()
for n in 1 2; do
    "$BIN/ringcast" --listen 127.0.0.1:0 --workers 2 --no-pin --node-id "soak-n$n" \
        --cluster "redis://127.0.0.1:$PORT" --history-size 2000 \
        >"$DIR/n$n.out" 2>"$DIR/n$n.err" &
    NPIDS+=($!)
done
for n in 1 2; do
    a=
    for _ in $(seq 300); do
        a=$(sed -n 's|.*ws://\([^/]*\)/.*|\1|p' "$DIR/n$n.out" 2>/dev/null | head -1)
        [[ -n $a ]] && break
        sleep 0.1
    done
    [[ -n $a ]] || { echo "cluster soak: node $n did not start:"; cat "$DIR/n$n.err"; exit 2; }
    ADDRS+=("$a")
    URLS+=(--url "ws://$a/")
done

metric() { # ADDR NAME -> value (empty if unreachable)
    curl -s --max-time 2 "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}
# Both links up before the load starts (event-driven: poll the metric, bounded).
wait_up() {
    for _ in $(seq 300); do
        local up=0
        for a in "${ADDRS[@]}"; do [[ $(metric "$a" ringcast_cluster_up) == 1 ]] && up=$((up + 1)); done
        (( up == ${#ADDRS[@]} )) && return 0
        sleep 0.1
    done
    return 1
}
wait_up || { echo "cluster soak: the nodes did not connect to Redis"; exit 2; }
GAPS0=(); DROP0=()
for a in "${ADDRS[@]}"; do
    GAPS0+=("$(metric "$a" ringcast_cluster_gaps_total)")
    DROP0+=("$(metric "$a" ringcast_cluster_dropped_total)")
done

# RSS monitor: the peak VmRSS of each node, sampled every 0.2 s.
( peak1=0; peak2=0
  while :; do
      r1=$(awk '/^VmRSS/ {print $2}' "/proc/${NPIDS[0]}/status" 2>/dev/null || echo 0)
      r2=$(awk '/^VmRSS/ {print $2}' "/proc/${NPIDS[1]}/status" 2>/dev/null || echo 0)
      (( ${r1:-0} > peak1 )) && peak1=$r1
      (( ${r2:-0} > peak2 )) && peak2=$r2
      echo "$peak1 $peak2" >"$DIR/rss.peak"
      sleep 0.2
  done ) &
MON=$!

# The load: TOPICS topics x (SUBS subscribers + 2 publishers), connections alternating between
# the two nodes (one publisher of each topic on each node), RATE msgs/s per publisher.
MEASURE=$(( DURATION > 8 ? DURATION - 5 : 3 ))
"$LOADTEST" "${URLS[@]}" --threads 2 --quiet --warmup 2s --duration "${MEASURE}s" \
    --grace 8s --json "$DIR/loadtest.json" pubsub --topics "$TOPICS" --subscribers "$SUBS" \
    --publishers 2 --rate "$RATE" --size 128 --history --presence --churn 2 \
    --unsubscribe-churn 4 --unsubscribe-pause 300ms >"$DIR/loadtest.out" 2>"$DIR/loadtest.err" &
LT=$!

# Redis restart in the middle of the measured window.
sleep $(( 2 + MEASURE / 2 ))
kill -9 "$RPID"; wait "$RPID" 2>/dev/null
sleep 1
start_redis
RESTART_UP=yes
wait_up || RESTART_UP=no

wait "$LT"; LT_RC=$?; LT=
GAPS1=(); DROP1=(); UP1=()
for a in "${ADDRS[@]}"; do
    GAPS1+=("$(metric "$a" ringcast_cluster_gaps_total)")
    DROP1+=("$(metric "$a" ringcast_cluster_dropped_total)")
done
kill "$MON" 2>/dev/null; wait "$MON" 2>/dev/null; MON=
read -r PEAK1 PEAK2 <"$DIR/rss.peak"

ALIVE=yes
RCS=()
for p in "${NPIDS[@]}"; do
    STATE=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo gone)
    [[ $STATE == Z || $STATE == gone ]] && ALIVE=no
    kill -TERM "$p" 2>/dev/null
done
for p in "${NPIDS[@]}"; do wait "$p"; RCS+=($?); done
NPIDS=()
kill -TERM "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=
trap - EXIT

python3 - "$DIR" "$RSS_BOUND" "$LT_RC" "$ALIVE" "$RESTART_UP" "${RCS[*]}" "$PEAK1 $PEAK2" \
    "${GAPS0[*]}" "${GAPS1[*]}" "${DROP0[*]}" "${DROP1[*]}" <<'EOF'
import json, os, sys
d, bound, lt_rc, alive, restart_up, rcs, peaks, g0, g1, x0, x1 = sys.argv[1:]
ints = lambda s: [int(v) if v else -1 for v in s.split(" ")]
rcs, peaks, g0, g1, x0, x1 = map(ints, (rcs, peaks, g0, g1, x0, x1))
try:
    lt = json.load(open(os.path.join(d, "loadtest.json")))
except (OSError, ValueError):
    lt = {}
ps = lt.get("pubsub", {})
fail = []
print(f"cluster soak: 2 nodes + redis-server restarted mid-run, logs in {d}")
print(f"  delivered {lt.get('delivered', 0)} of {lt.get('expected', 0)} expected copies; lost "
      f"{lt.get('lost', -1)} (+{lt.get('lost_at_closed_receivers', 0)} at server-closed), "
      f"duplicates {lt.get('duplicates', -1)}, loadtest exit {lt_rc}")
print(f"  resumes: {ps.get('churns', 0)} drops + {ps.get('unsubscribe_churns', 0)} unsubscribes; "
      f"recovered:true {ps.get('recovered_true', 0)} (replayed {ps.get('replayed', 0)}, broken "
      f"{ps.get('recovery_failures', 0)}), recovered:false {ps.get('recovered_false', 0)} "
      f"(skipped {ps.get('lost_unrecovered', 0)}); live epoch restarts {ps.get('epoch_restarts', 0)}")
print(f"  offsets: gaps {ps.get('offset_gaps', -1)} dups {ps.get('offset_dups', -1)}; order "
      f"checked {ps.get('order_checked', 0)} mismatched {ps.get('order_mismatches', -1)}")
print(f"  presence: snapshots {ps.get('presence_snapshots', 0)}, events "
      f"{ps.get('presence_events', 0)}, out of place {ps.get('presence_order_violations', -1)}, "
      f"anomalies {ps.get('presence_anomalies', 0)} (not a failure: changes during the outage are lost)")
nodes = ps.get("nodes", [])
for i in range(2):
    n = nodes[i] if i < len(nodes) else {}
    gaps = g1[i] - g0[i] if min(g0[i], g1[i]) >= 0 else -1
    dropped = x1[i] - x0[i] if min(x0[i], x1[i]) >= 0 else -1
    same, cross, distinct = (n.get(k, -1) for k in ("lost_same_node", "lost_cross_node", "lost_cross_distinct"))
    print(f"  node {i + 1}: peak RSS {peaks[i] / 1024:.1f} MiB (bound {bound}); lost same-node {same}, "
          f"cross-node {cross} copies = {distinct} distinct messages; gaps_total +{gaps}, "
          f"dropped_total +{dropped}; drain exit {rcs[i] if i < len(rcs) else '?'}")
    if same != 0:
        fail.append(f"node {i + 1}: {same} copies lost from publishers on the same node")
    if distinct < 0 or gaps < 0 or distinct > gaps:
        fail.append(f"node {i + 1}: {distinct} distinct cross-node messages lost, gaps_total +{gaps}")
    if peaks[i] <= 0 or peaks[i] > int(bound) * 1024:
        fail.append(f"node {i + 1}: peak RSS {peaks[i] / 1024:.1f} MiB over {bound} MiB")
    if i >= len(rcs) or rcs[i] != 0:
        fail.append(f"node {i + 1}: drain exit status {rcs[i] if i < len(rcs) else '?'}")
if int(lt_rc) != 0:
    fail.append(f"loadtest exited {lt_rc} (see loadtest.err)")
if ps.get("offset_gaps", -1) != 0:
    fail.append(f"{ps.get('offset_gaps')} offset gaps at subscribers")
cut = sum(lt.get("closed_by_server", {}).values()) + lt.get("unexpected_closes", 0) if lt else -1
if cut != 0:
    fail.append(f"{cut} well-behaved connections cut")
if ps.get("recovered_true", 0) + ps.get("recovered_false", 0) == 0:
    fail.append("no resume happened")
if alive != "yes":
    fail.append("a node did not stay up")
if restart_up != "yes":
    fail.append("the nodes did not reconnect to the restarted Redis")
for f in fail:
    print("FAIL:", f)
sys.exit(1 if fail else 0)
EOF
