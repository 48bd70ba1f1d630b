#!/usr/bin/env bash
# Installs the real servers the tests talk to, if they are missing. Idempotent.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  echo "installing test peers: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Telegram Bot API emulator (npm telegram-test-api), cached outside the work tree;
# tests/telegram_peer/start.js starts it with its shims.
TG_EMULATOR=telegram-test-api@4.2.1
node_dir="${KANAL_CACHE_DIR:-$HOME/.cache/kanal}/node"
if ! grep -qs '"version": "4.2.1"' "$node_dir/node_modules/telegram-test-api/package.json"; then
  echo "installing test peer: $TG_EMULATOR"
  mkdir -p "$node_dir"
  npm install --silent --no-audit --no-fund --prefix "$node_dir" "$TG_EMULATOR" >/dev/null
fi
