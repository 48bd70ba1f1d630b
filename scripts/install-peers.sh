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
if ((${#need[@]})); then
  echo "installing test peers: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
