#!/bin/sh
# Install edge-agent as a systemd service. Idempotent: run it again to upgrade.
#
#   sudo systemd/install.sh [--wheelhouse DIR] [--start] [--root DIR] [--dry-run]
#   sudo ./install.sh [--start] [--root DIR]       (in an offline bundle: make bundle)
#
# What it does (docs/operations.md explains each piece):
#   1. a venv in /opt/edge-agent/venv with edge-agent installed into it: from this source
#      tree; or, in an offline bundle (a wheels/ directory beside it) or with --wheelhouse DIR,
#      from wheels only, with no package index; /usr/local/bin/edge-agent linked to it
#   2. numba's compile cache warmed in /var/cache/edge-agent/numba, so the first start loads
#      the DSP kernels instead of compiling them
#   3. /etc/edge-agent/gateway.yaml.example and site.yaml.example (the reference site),
#      refreshed on every run, and site.yaml (which the example names) when there is none;
#      your gateway.yaml and site.yaml are never overwritten
#   4. /etc/systemd/system/edge-agent.service, daemon-reload, enable (and start with --start);
#      where systemd is not running, the unit is installed and enabled for the next boot
# --root DIR puts everything under DIR instead of / (a staging tree, tests): the files keep
# naming their final paths, and the running systemd is not touched.
# The service runs as a DynamicUser in the dialout group; systemd creates /var/lib/edge-agent
# (state, outbox) and /var/cache/edge-agent (numba cache) itself.
set -eu

PYTHON=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
WHEELHOUSE=
ROOT=
START=no
DRY_RUN=no

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheelhouse) [ $# -ge 2 ] || { echo "install.sh: --wheelhouse needs a directory" >&2; exit 2; }
                      WHEELHOUSE=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }
                ROOT=$(cd "$2" 2>/dev/null && pwd) || { echo "install.sh: --root $2: not a directory" >&2; exit 2; }
                shift 2 ;;
        --start) START=yes; shift ;;
        --dry-run) DRY_RUN=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

PREFIX=$ROOT/opt/edge-agent
CONF_DIR=$ROOT/etc/edge-agent
UNIT_DIR=$ROOT/etc/systemd/system
BIN_DIR=$ROOT/usr/local/bin
CACHE_DIR=$ROOT/var/cache/edge-agent
STATE_DIR=/var/lib/edge-agent  # the unit's StateDirectory=, named in the installed example

run() {
    if [ "$DRY_RUN" = yes ]; then
        echo "+ $*"
    else
        "$@"
    fi
}

# An offline bundle: the wheels beside this script are the only source of packages.
BUNDLE=no
if [ -f "$SRC/BUNDLE" ] && [ -d "$SRC/wheels" ]; then
    BUNDLE=yes
    WHEELHOUSE=${WHEELHOUSE:-$SRC/wheels}
fi

if [ "$DRY_RUN" = no ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2
    exit 2
fi
if [ -n "$WHEELHOUSE" ] && [ ! -d "$WHEELHOUSE" ]; then
    echo "install.sh: --wheelhouse $WHEELHOUSE: not a directory" >&2
    exit 2
fi
REQUIRED="$SRC/systemd/edge-agent.service $SRC/seeds/gateway.yaml $SRC/seeds/site.yaml"
[ "$BUNDLE" = yes ] || REQUIRED="$SRC/pyproject.toml $REQUIRED"
for f in $REQUIRED; do
    [ -f "$f" ] || { echo "install.sh: $f missing: run from an edge-agent source tree or bundle" >&2; exit 2; }
done
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install.sh: $PYTHON not found: install Python 3.11 or newer (or set PYTHON=...)" >&2
    exit 2
fi
if [ "$BUNDLE" = yes ]; then
    # The wheels are for one CPython version and one machine: say so rather than fail in pip.
    want_py=$(sed -n 's/^python=//p' "$SRC/BUNDLE")
    want_arch=$(sed -n 's/^arch=//p' "$SRC/BUNDLE")
    have_py=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    have_arch=$(uname -m)
    if [ "$have_py" != "$want_py" ] || [ "$have_arch" != "$want_arch" ]; then
        echo "install.sh: this bundle is for CPython $want_py on $want_arch; this machine has" \
             "$PYTHON $have_py on $have_arch: build one for it (make bundle" \
             "BUNDLE_ARCH=$have_arch BUNDLE_PYTHON=$have_py)" >&2
        exit 2
    fi
fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "install.sh: $PYTHON cannot create a venv: install python3-venv (apt-get install python3-venv)" >&2
    exit 2
fi

# 1. venv (kept across upgrades; pip replaces the package in it). From wheels, pip reads no
#    configuration (a pip.conf's index or find-links must not leak into an offline install).
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    run install -d -m 0755 "$PREFIX"
    run "$PYTHON" -m venv "$PREFIX/venv"
fi
if [ "$BUNDLE" = yes ]; then
    run env PIP_CONFIG_FILE=/dev/null "$PREFIX/venv/bin/python" -m pip --isolated install \
        --quiet --upgrade --no-index --find-links "$WHEELHOUSE" edge-agent
elif [ -n "$WHEELHOUSE" ]; then
    run env PIP_CONFIG_FILE=/dev/null "$PREFIX/venv/bin/python" -m pip --isolated install \
        --quiet --upgrade --no-index --find-links "$WHEELHOUSE" "$SRC"
else
    run "$PREFIX/venv/bin/python" -m pip install --quiet --upgrade "$SRC"
fi
run install -d -m 0755 "$BIN_DIR"
run ln -sfn /opt/edge-agent/venv/bin/edge-agent "$BIN_DIR/edge-agent"
run install -d -m 0755 "$PREFIX/share/doc"
run install -m 0644 "$SRC/docs/operations.md" "$PREFIX/share/doc/operations.md"

# 2. numba cache: compiled now, as root, into the unit's cache directory. systemd hands the
#    directory to the service's dynamic user at start (it chowns a directory that is not the
#    user's); on an upgrade it already is, so the new files get the directory's owner.
run install -d -m 0700 "$CACHE_DIR"
echo "install.sh: compiling the DSP kernels into $CACHE_DIR/numba (a minute on a Pi)"
#    Into the directory of these dsp sources (edge_agent/kernel_cache.py), as the daemon will.
run env NUMBA_CACHE_DIR="$CACHE_DIR/numba" "$PREFIX/venv/bin/python" -c \
    'from edge_agent.kernel_cache import ensure_numba_cache_dir as e; e(None); from edge_agent.daemon.analysis import warm_up; warm_up()'
if [ "$DRY_RUN" = no ]; then
    chown -R "$(stat -L -c %u:%g "$CACHE_DIR")" "$CACHE_DIR/numba"
fi

# 3. config: readable by the dynamic user; secrets go in edge-agent.env (root only, read by
#    systemd before it drops privileges). The reference site's files are examples: the
#    operator's gateway.yaml and site.yaml are never written or overwritten here. The
#    example's state_dir is the unit's state directory (the seed's is a developer's).
run install -d -m 0755 "$CONF_DIR"
if [ "$DRY_RUN" = yes ]; then
    echo "+ install -m 0644 $SRC/seeds/gateway.yaml $CONF_DIR/gateway.yaml.example (state_dir: $STATE_DIR)"
else
    sed "s#^\(  state_dir:\) .*#\1 $STATE_DIR#" "$SRC/seeds/gateway.yaml" > "$CONF_DIR/gateway.yaml.example.new"
    chmod 0644 "$CONF_DIR/gateway.yaml.example.new"
    mv "$CONF_DIR/gateway.yaml.example.new" "$CONF_DIR/gateway.yaml.example"
fi
run install -m 0644 "$SRC/seeds/site.yaml" "$CONF_DIR/site.yaml.example"
if [ ! -e "$CONF_DIR/site.yaml" ]; then
    # gateway.yaml.example names site_file: site.yaml: copied as it is, it must load.
    run install -m 0644 "$SRC/seeds/site.yaml" "$CONF_DIR/site.yaml"
fi
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

# 4. the unit. Enabled by systemctl where systemd runs; elsewhere (a container, a chroot, a
#    staging tree) systemctl --root enables it as files, for the next boot.
run install -d -m 0755 "$UNIT_DIR"
run install -m 0644 "$SRC/systemd/edge-agent.service" "$UNIT_DIR/edge-agent.service"
if [ -z "$ROOT" ] && { [ -d /run/systemd/system ] || [ "$DRY_RUN" = yes ]; }; then
    run systemctl daemon-reload
    run systemctl enable edge-agent.service
    if [ "$START" = yes ]; then
        if [ "$HAVE_CONFIG" = yes ] || [ "$DRY_RUN" = yes ]; then
            run systemctl restart edge-agent.service
        else
            echo "install.sh: not started: $CONF_DIR/gateway.yaml is missing" >&2
        fi
    fi
else
    if command -v systemctl >/dev/null 2>&1; then
        run systemctl --root="${ROOT:-/}" --quiet enable edge-agent.service
    else
        run install -d -m 0755 "$UNIT_DIR/multi-user.target.wants"
        run ln -sfn ../edge-agent.service "$UNIT_DIR/multi-user.target.wants/edge-agent.service"
    fi
    where=${ROOT:-this machine}
    echo "install.sh: systemd is not running for $where: the unit is installed and enabled" \
         "for the next boot, not started; meanwhile run it by hand:" \
         "$PREFIX/venv/bin/edge-agent run --config $CONF_DIR/gateway.yaml"
    if [ "$START" = yes ]; then
        echo "install.sh: --start ignored: no systemd to start it" >&2
    fi
    echo "install.sh: done."
    exit 0
fi
echo "install.sh: done. Start: systemctl start edge-agent; status: sudo edge-agent status"
