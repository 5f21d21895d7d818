#!/usr/bin/env bash
# Print the path of a redis-server binary, installing it with apt-get if absent.
# Exit 1 (with a reason on stderr) only when installation is impossible.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure_redis: redis-server is missing and we are not root (no passwordless sudo)" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_redis: redis-server is missing and apt-get is not available; install redis >= 6.2" >&2; exit 1
fi
echo "ensure_redis: installing redis-server with apt-get" >&2
$SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2 || {
  echo "ensure_redis: apt-get install redis-server failed" >&2; exit 1; }
command -v redis-server
