#!/bin/sh
# Fills the secrets into Kannel's configuration (Kannel reads no environment), then runs the box.
set -eu
umask 077
envsubst < /etc/kannel/kannel.conf.template > /tmp/kannel.conf
box="$1"; shift
exec "/usr/sbin/$box" "$@" /tmp/kannel.conf
