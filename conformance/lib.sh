# shellcheck shell=bash disable=SC2034
# Shared helpers for the conformance scripts. Source it; do not run it.
#
#   REPO_ROOT            repository root (set here)
#   ringcast_bin         prints the binary to test: $RINGCAST_BIN, else builds
#                        target/release/ringcast with cargo (unless RINGCAST_NO_BUILD=1)
#   start_ringcast LOGDIR ARGS...
#                        starts "$RINGCAST_BIN --listen 127.0.0.1:0 ARGS..." and waits
#                        (up to 30 s) for its "ringcast listening on ws://IP:PORT/" line;
#                        sets RC_PID, RC_URL (ws://IP:PORT/, wss:// with --tls-cert), RC_PORT
#   stop_ringcast        SIGTERM, waits up to 10 s (then SIGKILL); sets RC_EXIT

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RC_PID=""
RC_URL=""
RC_PORT=""
RC_EXIT=""

ringcast_bin() {
  if [[ -n "${RINGCAST_BIN:-}" ]]; then
    printf '%s\n' "$RINGCAST_BIN"
    return
  fi
  if [[ "${RINGCAST_NO_BUILD:-0}" != 1 ]]; then
    (cd "$REPO_ROOT" && cargo build --release -p ringcast >&2)
  fi
  printf '%s\n' "$REPO_ROOT/target/release/ringcast"
}

start_ringcast() {
  local logdir="$1"; shift
  mkdir -p "$logdir"
  : >"$logdir/ringcast.stdout"
  "$RINGCAST_BIN" --listen 127.0.0.1:0 "$@" >"$logdir/ringcast.stdout" 2>"$logdir/ringcast.stderr" &
  RC_PID=$!
  local deadline=$((SECONDS + 30)) line=""
  while true; do
    line="$(grep -m1 -E '^ringcast listening on wss?://' "$logdir/ringcast.stdout" || true)"
    [[ -n "$line" ]] && break
    if ! kill -0 "$RC_PID" 2>/dev/null; then
      echo "ringcast exited before printing its listening line; stderr:" >&2
      tail -n 50 "$logdir/ringcast.stderr" >&2 || true
      RC_PID=""
      return 1
    fi
    if (( SECONDS >= deadline )); then
      echo "ringcast did not print its listening line within 30 s" >&2
      stop_ringcast
      return 1
    fi
    sleep 0.05   # polling a log file for the ready line, bounded by the deadline above
  done
  RC_URL="$(sed -E 's#^ringcast listening on (wss?://[^ ]+).*#\1#' <<<"$line")"
  RC_PORT="$(sed -E 's#^wss?://.*:([0-9]+)/?$#\1#' <<<"$RC_URL")"
  echo "ringcast pid $RC_PID at $RC_URL ($line)" >&2
}

stop_ringcast() {
  RC_EXIT=""
  [[ -n "$RC_PID" ]] || return 0
  if kill -0 "$RC_PID" 2>/dev/null; then
    kill -TERM "$RC_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$RC_PID" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.05; done
    if kill -0 "$RC_PID" 2>/dev/null; then
      echo "ringcast did not exit within 10 s of SIGTERM; killing it" >&2
      kill -KILL "$RC_PID" 2>/dev/null || true
    fi
  fi
  set +e
  wait "$RC_PID" 2>/dev/null
  RC_EXIT=$?
  set -e
  RC_PID=""
}
