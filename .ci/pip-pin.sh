#!/usr/bin/env bash
# Usage: pip-pin.sh MODULE PACKAGE VERSION
# Makes `python3 -c 'import MODULE'` find PACKAGE==VERSION from PyPI for the test user's
# python3 (what the tests run), installing it only when another version or none is there.
# Used by the .ci/install.d scripts of Python clients; idempotent.
set -euo pipefail
module=$1 package=$2 want=$3
if python3 -c "import $module, importlib.metadata as m; assert m.version('$package') == '$want'" 2>/dev/null; then
  echo "$package $want present"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip
fi
# A Debian system Python refuses installs outside a venv (PEP 668): the flag allows this one
# package for the test user's python3.
python3 -m pip install --quiet "$package==$want" 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages "$package==$want"
python3 -c "import $module, importlib.metadata as m; print('$package', m.version('$package'))"
