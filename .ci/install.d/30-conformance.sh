#!/usr/bin/env bash
# Chromium, the Python 2.7 Autobahn venv, Python websockets and Node ws (conformance/).
set -euo pipefail
bash conformance/install-deps.sh
