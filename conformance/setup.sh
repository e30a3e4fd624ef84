#!/usr/bin/env bash
# Project-local test dependencies (idempotent; nothing outside target/ and conformance/node_modules):
#   target/conformance-venv     Python venv with conformance/requirements.txt (websockets)
#   conformance/node_modules    npm ci from conformance/package-lock.json (ws, playwright-core)
# Options: --kosoku  also install kosoku (PyPI) into the venv, for conformance/kosoku.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
VENV="$REPO_ROOT/target/conformance-venv"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
# playwright-core never downloads a browser; this makes sure nothing else tries either
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1

stamp="$VENV/.requirements.txt"
if [[ ! -x "$VENV/bin/python" ]] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
  echo "setup: python venv $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$stamp"
fi
if [[ "${1:-}" == --kosoku ]]; then
  "$VENV/bin/pip" install -q 'kosoku==0.1.0'
fi

if ! cmp -s "$HERE/package-lock.json" "$HERE/node_modules/.ringcast-lock.json"; then
  echo "setup: npm ci in conformance/" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$HERE/package-lock.json" "$HERE/node_modules/.ringcast-lock.json"
fi
echo "setup: python $("$VENV/bin/python" -c 'import sys, websockets; print(sys.version.split()[0], "websockets", websockets.__version__)'), node $(node --version)" >&2
