#!/usr/bin/env bash
# No module of the server imports one that imports it back (issue 13).
set -euo pipefail
python3 .ci/module-cycles.py server/src
