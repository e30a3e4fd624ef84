#!/usr/bin/env bash
# The `cent` Python package (Centrifugo's official server API client, PyPI) for
# server/tests/api.rs, which drives ringcast's server API (docs/api.md) with it. Pinned: the
# test reads the 5.x result classes. Idempotent.
set -euo pipefail
bash "$(dirname "$0")/../pip-pin.sh" cent cent 5.2.0
