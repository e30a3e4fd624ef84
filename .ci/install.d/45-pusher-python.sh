#!/usr/bin/env bash
# The `pusher` Python package (Pusher's official server SDK, PyPI) for the webhook test that
# validates ringcast's webhooks with its `validate_webhook` (server/src/webhooks/sdk_tests.rs).
# Pinned: the version the signature fixtures of pusher/tests/fixtures were made with. Idempotent.
set -euo pipefail
want=3.3.4
if python3 -c "import pusher, importlib.metadata as m; assert m.version('pusher') == '$want'" 2>/dev/null; then
  echo "pusher $want present"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip
fi
# A Debian system Python refuses installs outside a venv (PEP 668): the flag allows this one
# package for the test user's python3, which is what the test runs.
python3 -m pip install --quiet "pusher==$want" 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages "pusher==$want"
python3 -c "import pusher, importlib.metadata as m; print('pusher', m.version('pusher'))"
