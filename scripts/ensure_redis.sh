#!/usr/bin/env bash
# Print the path of a redis-server binary, installing it with apt-get if absent.
# Exit 1 (with a reason on stderr) only when installation is impossible.
exec bash "$(dirname "$0")/ensure_apt.sh" ensure_redis "redis-server" "redis-server" "install redis >= 6.2"
