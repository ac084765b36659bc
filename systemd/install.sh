#!/bin/sh
# Install edge-agent as a systemd service. Idempotent: run it again to upgrade.
#
#   sudo systemd/install.sh [--wheelhouse DIR] [--start] [--dry-run]
#
# What it does (docs/operations.md explains each piece):
#   1. a venv in /opt/edge-agent/venv with this source tree installed into it
#      (--wheelhouse DIR: install offline from wheels built elsewhere: pip wheel -w DIR .),
#      and /usr/local/bin/edge-agent linked to it (so `sudo edge-agent status` works)
#   2. /etc/edge-agent/gateway.yaml.example and site.yaml.example (the reference site),
#      refreshed on every run; your gateway.yaml is never written or overwritten
#   3. /etc/systemd/system/edge-agent.service, daemon-reload, enable (and start with --start)
# The service runs as a DynamicUser in the dialout group; systemd creates /var/lib/edge-agent
# (state, outbox) and /var/cache/edge-agent (numba cache) itself.
set -eu

PREFIX=/opt/edge-agent
CONF_DIR=/etc/edge-agent
UNIT_DIR=/etc/systemd/system
PYTHON=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
WHEELHOUSE=
START=no
DRY_RUN=no

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheelhouse) [ $# -ge 2 ] || { echo "install.sh: --wheelhouse needs a directory" >&2; exit 2; }
                      WHEELHOUSE=$2; shift 2 ;;
        --start) START=yes; shift ;;
        --dry-run) DRY_RUN=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

run() {
    if [ "$DRY_RUN" = yes ]; then
        echo "+ $*"
    else
        "$@"
    fi
}

if [ "$DRY_RUN" = no ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2
    exit 2
fi
if [ -n "$WHEELHOUSE" ] && [ ! -d "$WHEELHOUSE" ]; then
    echo "install.sh: --wheelhouse $WHEELHOUSE: not a directory" >&2
    exit 2
fi
for f in "$SRC/pyproject.toml" "$SRC/systemd/edge-agent.service" "$SRC/seeds/gateway.yaml"; do
    [ -f "$f" ] || { echo "install.sh: $f missing: run from an edge-agent source tree" >&2; exit 2; }
done

# 1. venv (kept across upgrades; pip replaces the package in it)
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    run install -d -m 0755 "$PREFIX"
    run "$PYTHON" -m venv "$PREFIX/venv"
fi
if [ -n "$WHEELHOUSE" ]; then
    run "$PREFIX/venv/bin/python" -m pip install --quiet --upgrade --no-index \
        --find-links "$WHEELHOUSE" "$SRC"
else
    run "$PREFIX/venv/bin/python" -m pip install --quiet --upgrade "$SRC"
fi
run ln -sfn "$PREFIX/venv/bin/edge-agent" /usr/local/bin/edge-agent
run install -d -m 0755 "$PREFIX/share/doc"
run install -m 0644 "$SRC/docs/operations.md" "$PREFIX/share/doc/operations.md"

# 2. config: readable by the dynamic user; secrets go in edge-agent.env (root only, read by
#    systemd before it drops privileges). The reference site's files are examples only: the
#    live gateway.yaml is the operator's, never written or overwritten here.
run install -d -m 0755 "$CONF_DIR"
run install -m 0644 "$SRC/seeds/gateway.yaml" "$CONF_DIR/gateway.yaml.example"
run install -m 0644 "$SRC/seeds/site.yaml" "$CONF_DIR/site.yaml.example"
# The secrets file (EDGE_AGENT_MQTT_PASSWORD=...): root only. Created empty so whoever fills it
# in keeps the mode; an existing one is tightened (its content is never touched).
if [ ! -e "$CONF_DIR/edge-agent.env" ]; then
    run install -m 0600 /dev/null "$CONF_DIR/edge-agent.env"
else
    run chmod 0600 "$CONF_DIR/edge-agent.env"
fi
HAVE_CONFIG=yes
if [ ! -e "$CONF_DIR/gateway.yaml" ]; then
    HAVE_CONFIG=no
    echo "install.sh: no $CONF_DIR/gateway.yaml yet: write it (start from gateway.yaml.example)," \
         "then edge-agent check-config $CONF_DIR/gateway.yaml"
else
    echo "install.sh: kept existing $CONF_DIR/gateway.yaml"
fi

# 3. the unit
run install -m 0644 "$SRC/systemd/edge-agent.service" "$UNIT_DIR/edge-agent.service"
run systemctl daemon-reload
run systemctl enable edge-agent.service
if [ "$START" = yes ]; then
    if [ "$HAVE_CONFIG" = yes ] || [ "$DRY_RUN" = yes ]; then
        run systemctl restart edge-agent.service
    else
        echo "install.sh: not started: $CONF_DIR/gateway.yaml is missing" >&2
    fi
fi
echo "install.sh: done. Start: systemctl start edge-agent; status: sudo edge-agent status"
