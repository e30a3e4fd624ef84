#!/usr/bin/env bash
# Installs everything the conformance tools need, idempotently, from Debian's archive, PyPI and
# the npm registry only (no browser or tool downloads of their own). Run as root; CI calls it.
#   apt:  chromium (--no-install-recommends; playwright-core drives /usr/bin/chromium),
#         python3-venv/nodejs/npm only where the machine lacks them,
#         python2.7 from Debian bullseye only where no Python 2.7 exists (see autobahn.sh)
#   pip:  target/conformance-venv (websockets), target/autobahn-venv (autobahntestsuite, Python 2.7)
#   npm:  conformance/node_modules (npm ci: ws, playwright-core)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v python3 >/dev/null || need+=(python3)
# The openssl CLI: the wss:// certificates of interop_python.py, interop_node.mjs, browser.mjs and
# AUTOBAHN_TLS=1 autobahn.sh, and `openssl s_client` in server/tests/tls_openssl.rs (cargo test).
command -v openssl >/dev/null || need+=(openssl)
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need+=(python3-venv python3-pip)
fi
{ command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
if (( ${#need[@]} )); then
  echo "install-deps: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

"$HERE/setup.sh" "$@"
"$HERE/autobahn.sh" --install-only
echo "install-deps: $(/usr/bin/chromium --version 2>/dev/null | head -n1)" >&2
