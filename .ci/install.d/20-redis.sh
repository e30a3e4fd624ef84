#!/usr/bin/env bash
# redis-server for the cluster tests (cluster/tests start their own on free loopback ports).
# Idempotent; Debian's package may start a system instance: the tests never use it, and we stop
# it where a service manager allows, so it does not hold port 6379 on CI machines.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
    systemctl disable redis-server >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1 || true
  fi
fi
redis-server --version
