#!/usr/bin/env bash
# The `cent` Python package (Centrifugo's official server API client, PyPI) for
# server/tests/api.rs, which drives ringcast's server API (docs/api.md) with it. Pinned: the
# test reads the 5.x result classes. Idempotent.
set -euo pipefail
want=5.2.0
if python3 -c "import cent, importlib.metadata as m; assert m.version('cent') == '$want'" 2>/dev/null; then
  echo "cent $want present"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip
fi
# A Debian system Python refuses installs outside a venv (PEP 668): the flag allows this one
# package for the test user's python3, which is what the test runs.
python3 -m pip install --quiet "cent==$want" 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages "cent==$want"
python3 -c "import cent, importlib.metadata as m; print('cent', m.version('cent'))"
