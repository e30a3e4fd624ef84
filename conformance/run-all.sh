#!/usr/bin/env bash
# Runs every conformance tool against one ringcast binary, in this order:
#   setup (venv + npm ci), Autobahn wstest (over ws://, then wss://), Python websockets interop,
#   Node ws interop, browser.
# Every step runs even when an earlier one failed; the exit status is non-zero if any failed.
#
#   conformance/run-all.sh              (builds target/release/ringcast unless RINGCAST_BIN is set)
#   conformance/run-all.sh --install    also run install-deps.sh first (apt chromium, wstest venv)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

if [[ "${1:-}" == --install ]]; then "$HERE/install-deps.sh"; else "$HERE/setup.sh"; fi
RINGCAST_BIN="$(ringcast_bin)"
export RINGCAST_BIN
[[ -x "$RINGCAST_BIN" ]] || { echo "run-all: no ringcast binary at $RINGCAST_BIN" >&2; exit 1; }
PY="$REPO_ROOT/target/conformance-venv/bin/python"

names=(); results=(); times=()
run_step() {
  local name="$1"; shift
  echo; echo "=== $name: $*"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  names+=("$name"); times+=("$((SECONDS - start))")
  if (( rc == 0 )); then results+=(pass); else results+=("FAIL (exit $rc)"); fi
}
run_step autobahn "$HERE/autobahn.sh"
run_step autobahn-wss env AUTOBAHN_TLS=1 "$HERE/autobahn.sh"
run_step interop-python "$PY" "$HERE/interop_python.py"
run_step interop-node node "$HERE/interop_node.mjs"
run_step browser node "$HERE/browser.mjs"

echo; echo "=== conformance summary ($RINGCAST_BIN)"
echo "| step | result | seconds |"; echo "| --- | --- | ---: |"
passed=0; failed=0
for i in "${!names[@]}"; do
  echo "| ${names[$i]} | ${results[$i]} | ${times[$i]} |"
  if [[ "${results[$i]}" == pass ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "conformance: $passed passed, $failed failed"
(( failed == 0 ))
