#!/usr/bin/env bash
# Usage: ensure_apt.sh TOOL "COMMANDS" "PACKAGES" [HINT]
# Print the path of the first of COMMANDS (space-separated), installing PACKAGES with apt-get when
# any of COMMANDS is missing. Exit 1 (with a reason on stderr) only when installation is impossible.
set -euo pipefail
tool=$1; read -r -a cmds <<< "$2"; read -r -a pkgs <<< "$3"; hint=${4:-}
have_all() { for c in "${cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || return 1; done; }
if have_all; then
  command -v "${cmds[0]}"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "$tool: ${cmds[*]} missing and we are not root (no passwordless sudo)" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$tool: ${cmds[*]} missing and apt-get is not available${hint:+; $hint}" >&2; exit 1
fi
echo "$tool: installing ${pkgs[*]} with apt-get" >&2
$SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >&2 || {
  echo "$tool: apt-get install ${pkgs[*]} failed" >&2; exit 1; }
have_all || { echo "$tool: ${cmds[*]} still missing after installing ${pkgs[*]}" >&2; exit 1; }
command -v "${cmds[0]}"
