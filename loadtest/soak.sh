#!/usr/bin/env bash
# Soak (issue 14): a well-behaved `loadtest broadcast` through a release ringcast while hostile
# clients (loadtest/soak/hostile.py) hit the same server. See loadtest/README.md, "Soak".
#
#   loadtest/soak.sh [SECONDS]          default 60
#
# Environment: SOAK_NO_BUILD=1 (use the binaries already in target/release), SOAK_FD_LIMIT
# (server open-file limit, soft and hard, default 1024), SOAK_RSS_BOUND_MIB (peak RSS allowed,
# default 256), SOAK_RSS_CAP_MIB (kill the server past it, default 1024), SOAK_CPU_BOUND (worker
# CPU allowed at the fd limit, share of a core, default 0.5), SOAK_DIR (keep logs and reports
# there; default a temporary directory).
# Exits non-zero if a well-behaved client lost a message or was cut, if the server crashed, if
# peak RSS, worker CPU at the fd limit or accept-failure log lines (at most 1/s per worker)
# passed their bounds, or if the drain at the end did not exit 0.
set -uo pipefail

DURATION=${1:-60}
FD_LIMIT=${SOAK_FD_LIMIT:-1024}
RSS_CAP=${SOAK_RSS_CAP_MIB:-1024}
RSS_BOUND=${SOAK_RSS_BOUND_MIB:-256}
CPU_BOUND=${SOAK_CPU_BOUND:-0.5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
DIR=${SOAK_DIR:-$(mktemp -d /tmp/ringcast-soak.XXXXXX)}
mkdir -p "$DIR"

if [[ -z ${SOAK_NO_BUILD:-} ]]; then
    cargo build --release --quiet -p ringcast -p loadtest --manifest-path "$ROOT/Cargo.toml" || exit 2
fi

# Soft and hard limit alike, so the connect flood really reaches the server's descriptor limit.
( ulimit -n "$FD_LIMIT" && exec "$BIN/ringcast" --listen 127.0.0.1:0 --workers 2 \
    --max-backpressure 1048576 --handshake-timeout 2 >"$DIR/server.out" 2>"$DIR/server.err" ) &
PID=$!
# Up to 30 s, as conformance/lib.sh: a loaded CI machine can be slow to start a process.
for _ in $(seq 300); do
    grep -q 'listening on' "$DIR/server.out" 2>/dev/null && break
    sleep 0.1
done
ADDR=$(sed -n 's|.*ws://\([^/]*\)/.*|\1|p' "$DIR/server.out" | head -1)
if [[ -z $ADDR ]]; then
    echo "soak: ringcast did not start:"; cat "$DIR/server.err"; kill "$PID" 2>/dev/null; exit 2
fi
cleanup() { kill -9 "$PID" "${LT:-}" "${HP:-}" 2>/dev/null; }
trap cleanup EXIT

# Well-behaved: 2 rooms x 50 subscribers, 2 publishers each at 100 msg/s, every copy checked.
MEASURE=$(( DURATION > 6 ? DURATION - 4 : 2 ))
"$BIN/loadtest" --url "ws://$ADDR/" --threads 1 --quiet --warmup 1s --duration "${MEASURE}s" \
    --grace 3s --json "$DIR/loadtest.json" broadcast --rooms 2 --subscribers 50 --publishers 2 \
    --rate 100 --size 256 >"$DIR/loadtest.out" 2>"$DIR/loadtest.err" &
LT=$!
python3 "$ROOT/loadtest/soak/hostile.py" --addr "$ADDR" --pid "$PID" --duration "$DURATION" \
    --flood $(( FD_LIMIT + 200 )) --rss-cap-mib "$RSS_CAP" --report "$DIR/hostile.json" &
HP=$!
wait "$LT"; LT_RC=$?
wait "$HP"; HP_RC=$?

ALIVE=yes
STATE=$(awk '{print $3}' "/proc/$PID/stat" 2>/dev/null || echo gone)
[[ $STATE == Z || $STATE == gone ]] && ALIVE=no
if [[ $ALIVE == yes ]]; then
    kill -TERM "$PID"
    for _ in $(seq 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
fi
wait "$PID"; SERVER_RC=$?
trap - EXIT

eval "$(python3 - "$DIR" <<'EOF'
import json, sys, os
d = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
lt, h = load("loadtest.json"), load("hostile.json")
lost = lt.get("lost", -1) + lt.get("lost_at_closed_receivers", 0) if lt else -1
cut = sum(lt.get("closed_by_server", {}).values()) + lt.get("unexpected_closes", 0) if lt else -1
print(f"LOST={lost} CUT={cut} EXPECTED={lt.get('expected', 0)} DELIVERED={lt.get('delivered', 0)}")
print(f"PEAK_RSS={h.get('peak_rss_mib', -1)} PEAK_CPU={h.get('peak_worker_cpu_at_fd_limit', -1)}")
print(f"PEAK_FDS={h.get('peak_fds', -1)} KILLED_RSS={int(h.get('killed_for_rss', False))}")
EOF
)"

ACCEPT_LINES=$(grep -c 'accept' "$DIR/server.err" || true)
LOG_BOUND=$(( 2 * (DURATION * 3 / 10 + 1) + 5 ))
echo "soak ${DURATION}s against ringcast (fd limit $FD_LIMIT), logs in $DIR"
echo "  well-behaved: $DELIVERED of $EXPECTED copies delivered, lost $LOST, clients cut $CUT (loadtest exit $LT_RC)"
echo "  server: peak RSS ${PEAK_RSS} MiB (cap $RSS_CAP), peak fds $PEAK_FDS, peak worker CPU at the fd limit $(python3 -c "print(f'{$PEAK_CPU*100:.0f}%')")"
echo "  stayed up: $ALIVE; drain exit status $SERVER_RC; stderr $(wc -c <"$DIR/server.err") bytes, $ACCEPT_LINES accept-failure lines (bound $LOG_BOUND)"
echo "  hostile: $(python3 -c "import json;print(json.load(open('$DIR/hostile.json'))['hostile'])" 2>/dev/null)"

FAIL=0
[[ $LOST != 0 ]] && { echo "FAIL: well-behaved clients lost messages"; FAIL=1; }
[[ $CUT != 0 ]] && { echo "FAIL: well-behaved clients were cut"; FAIL=1; }
[[ $LT_RC != 0 ]] && { echo "FAIL: loadtest exited $LT_RC"; FAIL=1; }
python3 -c "import sys; sys.exit(0 if $PEAK_RSS <= $RSS_BOUND else 1)" || { echo "FAIL: peak RSS ${PEAK_RSS} MiB over ${RSS_BOUND} MiB"; FAIL=1; }
python3 -c "import sys; sys.exit(0 if $PEAK_CPU <= $CPU_BOUND else 1)" || { echo "FAIL: worker CPU at the fd limit over $CPU_BOUND of a core"; FAIL=1; }
(( ACCEPT_LINES > LOG_BOUND )) && { echo "FAIL: $ACCEPT_LINES accept-failure log lines (bound $LOG_BOUND)"; FAIL=1; }
[[ $KILLED_RSS == 1 ]] && { echo "FAIL: RSS passed ${RSS_CAP} MiB, server killed"; FAIL=1; }
[[ $ALIVE != yes ]] && { echo "FAIL: the server did not stay up"; FAIL=1; }
[[ $ALIVE == yes && $SERVER_RC != 0 ]] && { echo "FAIL: drain exit status $SERVER_RC"; FAIL=1; }
[[ $HP_RC != 0 ]] && { echo "FAIL: hostile.py exited $HP_RC"; FAIL=1; }
exit $FAIL
