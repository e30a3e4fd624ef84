#!/usr/bin/env bash
# The Pusher clients we did not write, for server/tests/pusher_js.rs: pusher-js, the `pusher`
# server SDK, laravel-echo and playwright-core (drives Debian's Chromium, which
# 30-conformance.sh installs) from the npm registry (versions pinned by
# conformance/pusher/package-lock.json) into conformance/pusher/node_modules (the `pusher`
# server SDK from PyPI is 45-pusher-python.sh's). Idempotent: nothing is fetched when the
# pinned versions are installed. Takes ~5 s when it installs.
set -euo pipefail
cd "$(dirname "$0")/../../conformance/pusher"
if ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# Every pinned npm dependency installed at its pinned version: nothing to do.
if node -e '
  const want = require("./package.json").dependencies;
  for (const [p, v] of Object.entries(want)) {
    if (require(`./node_modules/${p}/package.json`).version !== v) process.exit(1);
  }' 2>/dev/null; then
  echo "pusher clients present"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
node -e 'for (const p of ["pusher-js", "pusher", "laravel-echo"]) console.log(p, require(`./node_modules/${p}/package.json`).version)'
