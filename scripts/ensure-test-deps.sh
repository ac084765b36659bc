#!/bin/sh
# Install the real peers the tests talk to (socat for serial ptys, mosquitto for MQTT,
# openssl for test certificates, systemd-analyze for unit checks) when they are missing.
set -eu
missing=""
command -v socat >/dev/null 2>&1 || missing="$missing socat"
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing test tools:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "error: the tests need:$missing; install them with: sudo apt-get install$missing" >&2
    exit 2
fi
