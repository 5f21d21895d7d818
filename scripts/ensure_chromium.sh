#!/usr/bin/env bash
# Print the path of chromedriver (Debian's chromium-driver, matching Debian's chromium), installing
# chromium and chromium-driver with apt-get if either is absent. The browser tests drive this pair;
# nothing is downloaded by Selenium itself.
# Exit 1 (with a reason on stderr) only when installation is impossible.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  command -v chromedriver
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure_chromium: chromium/chromedriver missing and we are not root (no passwordless sudo)" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: chromium/chromedriver missing and apt-get is not available" >&2; exit 1
fi
echo "ensure_chromium: installing chromium and chromium-driver with apt-get" >&2
$SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >&2 || {
  echo "ensure_chromium: apt-get install chromium chromium-driver failed" >&2; exit 1; }
command -v chromedriver
