#!/usr/bin/env bash
# Autobahn TestSuite (wstest fuzzingclient, cases 1.* - 10.*, 12.* and 13.*) against ringcast.
#
#   conformance/autobahn.sh            run 1.*-10.* and the CI subset of 12.*/13.*
#                                      (permessage-deflate: X.Y.1-X.Y.8 of every group, the
#                                      messages up to 1 KiB; ~1.5 min), compare with
#                                      conformance/autobahn-expected.json
#   conformance/autobahn.sh --full     every case, 12.* and 13.* in full (~12 min here)
#   conformance/autobahn.sh --update   run every case, then rewrite the golden file from it
#   conformance/autobahn.sh --install-only   only install wstest (target/autobahn-venv)
#
# Environment:
#   RINGCAST_BIN       binary to test (default: cargo build --release -p ringcast)
#   AUTOBAHN_CASES     comma list of case patterns (default above); a subset is
#                      compared only on the cases it ran
#   AUTOBAHN_SERVER_ARGS  server flags (default below)
#   AUTOBAHN_TIMEOUT   seconds for the whole wstest run (default 600, 1500 with --full)
#   AUTOBAHN_ALLOW     extra verdicts to accept, e.g. NON-STRICT (default: none)
#   PYTHON27           a python2.7 to build the wstest venv from (default: pyenv's, else Debian's)
#   AUTOBAHN_TLS=1     the same cases over wss:// (ringcast --tls-cert with a self-signed
#                      certificate made here with openssl; wstest does not verify it), against
#                      the same golden file; results in target/autobahn-tls
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

UPDATE=()
FULL=0
INSTALL_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --update) UPDATE=(--update); FULL=1 ;;
    --full) FULL=1 ;;
    --install-only) INSTALL_ONLY=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

OUT="$REPO_ROOT/target/autobahn"
[[ "${AUTOBAHN_TLS:-}" == 1 ]] && OUT="$REPO_ROOT/target/autobahn-tls"
VENV="$REPO_ROOT/target/autobahn-venv"
TOOLS="$REPO_ROOT/target/autobahn-tools"
WSTEST_VERSION="25.10.1"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

cleanup() { stop_ringcast; }
trap cleanup EXIT

# ---------------------------------------------------------------- install wstest
find_python27() {
  if [[ -n "${PYTHON27:-}" ]]; then printf '%s\n' "$PYTHON27"; return; fi
  local p
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7; do
    [[ -x "$p" ]] && { printf '%s\n' "$p"; return; }
  done
  [[ -x /usr/bin/python2.7 ]] && { printf '%s\n' /usr/bin/python2.7; return; }
  return 1
}

# Debian bookworm has no python2.7: take it from bullseye (same mirror and keyring as the
# machine's bookworm entry), pinned low so that nothing else is pulled from bullseye.
apt_install_python27() {
  local uri keyring
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    keyring="$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  else
    uri="$(awk '$1=="deb" && $0 ~ / bookworm /{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  uri="${uri:-http://deb.debian.org/debian}"
  keyring="${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
  echo "autobahn: installing python2.7 from Debian bullseye ($uri)" >&2
  cat >/etc/apt/sources.list.d/ringcast-bullseye-py27.sources <<SRC
Types: deb
URIs: $uri
Suites: bullseye
Components: main
Signed-By: $keyring
SRC
  cat >/etc/apt/preferences.d/ringcast-bullseye-py27 <<PIN
Package: *
Pin: release n=bullseye
Pin-Priority: 100
PIN
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python2.7 python2.7-dev >/dev/null
}

install_wstest() {
  if [[ -x "$VENV/bin/wstest" && -f "$VENV/.ringcast-wstest-$WSTEST_VERSION" ]]; then
    return
  fi
  local py27 seeded=1
  if [[ "${AUTOBAHN_FORCE_APT_PY27:-0}" == 1 ]] || ! py27="$(find_python27)"; then
    [[ -x /usr/bin/python2.7 ]] || apt_install_python27
    py27=/usr/bin/python2.7
    seeded=0
  fi
  echo "autobahn: building the wstest venv from $py27" >&2
  rm -rf "$VENV" "$TOOLS/virtualenv"
  python3 -m pip install -q --disable-pip-version-check --target "$TOOLS/virtualenv" 'virtualenv<20.22' >&2
  if (( seeded )); then
    # virtualenv 20.21 still seeds Python 2.7 environments (pip 20.3.4, setuptools 44.1.1)
    PYTHONPATH="$TOOLS/virtualenv" python3 -m virtualenv -q --no-periodic-update -p "$py27" "$VENV" >&2
  else
    # Debian's python2.7 has no pip: install pip/setuptools/wheel from PyPI wheels
    PYTHONPATH="$TOOLS/virtualenv" python3 -m virtualenv -q --no-periodic-update --no-seed -p "$py27" "$VENV" >&2
    rm -rf "$TOOLS/py27-wheels"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$TOOLS/py27-wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 >&2
    "$VENV/bin/python" "$TOOLS/py27-wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -q \
      --no-python-version-warning --no-index --find-links "$TOOLS/py27-wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 >&2
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-python-version-warning \
    "autobahntestsuite==$WSTEST_VERSION" >&2
  "$VENV/bin/wstest" -a >/dev/null
  touch "$VENV/.ringcast-wstest-$WSTEST_VERSION"
}

install_wstest
echo "autobahn: $("$VENV/bin/wstest" -a 2>&1 | tr '\n' ' ')" >&2
if (( INSTALL_ONLY )); then exit 0; fi

# ---------------------------------------------------------------- server
RINGCAST_BIN="$(ringcast_bin)"
export RINGCAST_BIN
# 16 MiB messages (cases 9.1.6 / 9.2.6) echoed back need a matching backpressure cap
read -r -a SERVER_ARGS <<<"${AUTOBAHN_SERVER_ARGS:---echo --max-message-bytes 16777216 --max-backpressure 67108864}"
mkdir -p "$OUT"
find "$OUT" -maxdepth 1 -type f \( -name '*.json' -o -name '*.html' \) -delete
if [[ "${AUTOBAHN_TLS:-}" == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
  SERVER_ARGS+=(--tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem")
fi
start_ringcast "$OUT" "${SERVER_ARGS[@]}"

# ---------------------------------------------------------------- wstest
CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.*,13.*"
SUBSET=()
if [[ -n "${AUTOBAHN_CASES:-}" ]]; then
  CASES="$AUTOBAHN_CASES"
  SUBSET=(--subset)
elif (( ! FULL )); then
  # 12.*/13.* in full take ~12 min on 2 cores (wstest compresses in Python): CI runs cases
  # 1-8 of each group (messages of 16 B to 1 KiB, every offer and window of 13.*).
  deflate=()
  for group in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for n in 1 2 3 4 5 6 7 8; do deflate+=("$group.$n"); done
  done
  CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,$(IFS=,; echo "${deflate[*]}")"
  SUBSET=(--subset)
fi
python3 - "$OUT/spec.json" "${RC_URL%/}" "$CASES" "$OUT" <<'PY'
import json, sys
path, url, cases, outdir = sys.argv[1:]
spec = {
    "outdir": outdir,
    "servers": [{"agent": "ringcast", "url": url}],
    "cases": [c.strip() for c in cases.split(",") if c.strip()],
    "exclude-cases": [],
    "exclude-agent-cases": {},
}
json.dump(spec, open(path, "w"), indent=2)
PY
echo "autobahn: wstest -m fuzzingclient against $RC_URL, cases ${CASES:0:120}..." >&2
start=$SECONDS
set +e
(cd "$OUT" && timeout "${AUTOBAHN_TIMEOUT:-$(( FULL ? 1500 : 600 ))}" "$VENV/bin/wstest" -m fuzzingclient -s "$OUT/spec.json") \
  >"$OUT/wstest.log" 2>&1
wstest_rc=$?
set -e
echo "autobahn: wstest finished in $((SECONDS - start)) s (exit $wstest_rc; log $OUT/wstest.log)" >&2
stop_ringcast
server_ok=1
if [[ "$RC_EXIT" != 0 ]]; then
  echo "autobahn: ringcast exited with status $RC_EXIT after SIGTERM (expected 0); stderr tail:" >&2
  tail -n 20 "$OUT/ringcast.stderr" >&2 || true
  server_ok=0
fi
if (( wstest_rc != 0 )) || [[ ! -f "$OUT/index.json" ]]; then
  echo "autobahn: wstest failed or wrote no index.json; log tail:" >&2
  tail -n 30 "$OUT/wstest.log" >&2
  exit 1
fi

# ---------------------------------------------------------------- verdicts
ALLOW=()
[[ -n "${AUTOBAHN_ALLOW:-}" ]] && ALLOW=(--allow "$AUTOBAHN_ALLOW")
python3 "$HERE/autobahn_check.py" --index "$OUT/index.json" \
  --expected "$HERE/autobahn-expected.json" --summary-out "$OUT/summary.md" \
  "${UPDATE[@]}" "${SUBSET[@]}" "${ALLOW[@]}"
(( server_ok )) || exit 1
