#!/bin/sh
# Make sure the interpreter can build a venv (Debian ships venv separately).
set -eu
PY="${1:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "error: $PY not found; install Python 3.11 or newer (apt-get install python3 python3-venv)" >&2
    exit 2
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "error: edge-agent needs Python >= 3.11, $PY is $("$PY" -V 2>&1)" >&2
    exit 2
fi
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    else
        echo "error: $PY lacks venv/ensurepip; run: sudo apt-get install python3-venv" >&2
        exit 2
    fi
fi
