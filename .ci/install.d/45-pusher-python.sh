#!/usr/bin/env bash
# The `pusher` Python package (Pusher's official server SDK, PyPI) for the webhook test that
# validates ringcast's webhooks with its `validate_webhook` (server/src/webhooks/sdk_tests.rs).
# Pinned: the version pusher/tests/fixtures were made with. Idempotent.
set -euo pipefail
bash "$(dirname "$0")/../pip-pin.sh" pusher pusher 3.3.4
