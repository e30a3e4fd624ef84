#!/usr/bin/env bash
# Quick local loop: kosoku (PyPI; a Rust runner of the Autobahn case files, Python 3, no Python 2
# needed) against ringcast. Not the reference: CI uses autobahn.sh (real wstest). The report is
# checked with autobahn_check.py (--subset) against the same golden file; kosoku's verdicts can differ from wstest's.
#
#   conformance/kosoku.sh [CASE-GLOB ...]     default: 1.* ... 10.*   (e.g. conformance/kosoku.sh '6.*')
# Environment: RINGCAST_BIN, KOSOKU_PARALLELISM (default 1: all cases share the lobby room, so parallel cases with --echo see each other's messages), AUTOBAHN_SERVER_ARGS.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"
trap stop_ringcast EXIT

VENV="$REPO_ROOT/target/conformance-venv"
[[ -x "$VENV/bin/python" ]] || "$HERE/setup.sh" >&2
[[ -x "$VENV/bin/kosoku" ]] || PIP_ROOT_USER_ACTION=ignore "$VENV/bin/pip" install -q --disable-pip-version-check 'kosoku==0.1.0' >&2

OUT="$REPO_ROOT/target/kosoku"
rm -rf "$OUT"; mkdir -p "$OUT"
RINGCAST_BIN="$(ringcast_bin)"; export RINGCAST_BIN
read -r -a SERVER_ARGS <<<"${AUTOBAHN_SERVER_ARGS:---echo --max-message-bytes 16777216 --max-backpressure 67108864}"
start_ringcast "$OUT" "${SERVER_ARGS[@]}"

INCLUDE=()
if (( $# )); then for c in "$@"; do INCLUDE+=(-i "$c"); done
else for s in 1 2 3 4 5 6 7 9 10; do INCLUDE+=(-i "$s.*"); done; fi
hostport="${RC_URL#ws://}"; hostport="${hostport%/}"
start=$SECONDS
"$VENV/bin/kosoku" -m fuzzingclient "${INCLUDE[@]}" -x '12.*' -x '13.*' \
  -p "${KOSOKU_PARALLELISM:-1}" -o "$OUT" "$hostport" >"$OUT/kosoku.log" 2>&1 || true
echo "kosoku: finished in $((SECONDS - start)) s (log $OUT/kosoku.log)" >&2
stop_ringcast
index="$(find "$OUT" -name index.json | head -n1)"
[[ -n "$index" ]] || { echo "kosoku wrote no index.json; log tail:" >&2; tail -n 30 "$OUT/kosoku.log" >&2; exit 1; }
python3 "$HERE/autobahn_check.py" --index "$index" --subset --summary-out "$OUT/summary.md"
