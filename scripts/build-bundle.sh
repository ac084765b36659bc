#!/bin/sh
# Build the offline installer bundle: one tarball that installs edge-agent on a gateway with no
# network. Usually run through make (docs/installers.md "Offline installer bundle"):
#
#   make bundle                                         # this machine's arch and Python
#   make bundle BUNDLE_ARCH=aarch64 BUNDLE_PYTHON=3.11  # a Raspberry Pi 4/5, CM4 (64-bit OS)
#
#   scripts/build-bundle.sh --arch ARCH --python X.Y [--glibc X.Y] [--out DIR] [--resolve-only]
#
# --arch x86_64 | aarch64; --python 3.11 | 3.12 | 3.13 (CPython, the gateway's python3);
# --glibc: the oldest C library the gateways run (default 2.28: Debian 10 and every
# Raspberry Pi OS since); wheels need manylinux <= that. --resolve-only: check that every
# dependency resolves to a binary wheel for the target (metadata only, nothing downloaded in
# full) and print them, build nothing.
#
# The tarball, dist/edge-agent-VERSION-linux-ARCH-cpXY.tar.gz, holds the project's wheel and
# every dependency as a binary wheel for the target (wheels/, SHA256SUMS), the unit, the
# example config and site, the docs the unit names, and install.sh (systemd/install.sh, which
# installs from wheels/ with no package index). BUNDLE says what it was built for.
#
# Needs the project's venv (make venv) and the package index (or pip's cache, .cache/pip).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${BUNDLE_BUILD_PYTHON:-$ROOT/.venv/bin/python}
ARCH=
PYVER=
GLIBC=2.28
OUT=$ROOT/dist
RESOLVE_ONLY=no

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "build-bundle: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs x86_64 or aarch64"; ARCH=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || die "--python needs a version like 3.11"; PYVER=$2; shift 2 ;;
        --glibc) [ $# -ge 2 ] || die "--glibc needs a version like 2.28"; GLIBC=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --resolve-only) RESOLVE_ONLY=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

case "$ARCH" in
    x86_64|aarch64) ;;
    arm64) ARCH=aarch64 ;;
    amd64) ARCH=x86_64 ;;
    *) die "--arch ${ARCH:-(missing)}: expected x86_64 or aarch64" ;;
esac
case "$PYVER" in
    3.11|3.12|3.13) ;;
    *) die "--python ${PYVER:-(missing)}: expected 3.11, 3.12 or 3.13 (CPython)" ;;
esac
case "$GLIBC" in
    2.[0-9]|2.[0-9][0-9]) ;;
    *) die "--glibc $GLIBC: expected a version like 2.28" ;;
esac
GLIBC_MINOR=${GLIBC#2.}
[ "$GLIBC_MINOR" -ge 17 ] || die "--glibc $GLIBC: the oldest manylinux is glibc 2.17"
[ -x "$PY" ] || die "$PY missing: run make venv first"

CP=cp$(echo "$PYVER" | tr -d .)
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("'"$ROOT"'/pyproject.toml", "rb"))["project"]["version"])')
NAME=edge-agent-$VERSION-linux-$ARCH-$CP
CACHE=${PIP_CACHE_DIR:-$ROOT/.cache/pip}

# Every manylinux tag a gateway with glibc $GLIBC accepts, newest first (pip takes the list
# as given: manylinux_2_28 does not imply the older ones).
PLATFORMS=
minor=$GLIBC_MINOR
while [ "$minor" -ge 17 ]; do
    PLATFORMS="$PLATFORMS --platform manylinux_2_${minor}_$ARCH"
    minor=$((minor - 1))
done
PLATFORMS="$PLATFORMS --platform manylinux2014_$ARCH"
TARGET="--only-binary=:all: $PLATFORMS --implementation cp --python-version $PYVER --abi $CP"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. The project's wheel (pure Python), built with the venv's setuptools (no index needed)
#    from a clean copy of the sources: setuptools' build/ directory in the tree would keep
#    modules deleted since, and put them in the wheel.
#    The packages are the ones pyproject.toml's [tool.setuptools.packages.find] includes.
PACKAGES=$("$PY" -c 'import sys, tomllib
found = tomllib.load(open(sys.argv[1], "rb"))["tool"]["setuptools"]["packages"]["find"]
print(" ".join(p.rstrip("*") for p in found["include"]))' "$ROOT/pyproject.toml")
mkdir -p "$WORK/src"
# shellcheck disable=SC2086  # one word per package
(cd "$ROOT" && tar --create --exclude=__pycache__ pyproject.toml README.md $PACKAGES) |
    tar --extract --directory "$WORK/src"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$WORK/project" "$WORK/src"
PROJECT_WHEEL=$(ls "$WORK"/project/edge_agent-*.whl)

if [ "$RESOLVE_ONLY" = yes ]; then
    # 2'. Resolve for the target without installing. fast-deps reads each wheel's metadata
    # with HTTP range requests (a few kB, not the 60 MB of llvmlite) where the index does not
    # publish the metadata files itself; pip warns that the feature is experimental.
    # shellcheck disable=SC2086
    if "$PY" -m pip install --quiet --dry-run --ignore-installed --use-feature=fast-deps \
        $TARGET --target "$WORK/target" --cache-dir "$CACHE" --report "$WORK/report.json" \
        "$PROJECT_WHEEL" 2> "$WORK/pip.err"; then
        resolved=yes
    else
        resolved=no
    fi
    grep -v "fast-deps and it is not ready for production" "$WORK/pip.err" >&2 || true
    if [ "$resolved" = no ]; then
        echo "build-bundle: no binary wheel set for linux $ARCH, CPython $PYVER, glibc >= $GLIBC" \
             "(pip's reason above)" >&2
        exit 1
    fi
    "$PY" - "$WORK/report.json" "$ARCH" <<'EOF'
import json
import sys

report, arch = sys.argv[1], sys.argv[2]
bad = []
for item in json.load(open(report))["install"]:
    name = item["download_info"]["url"].rsplit("/", 1)[-1]
    ok = name.endswith(".whl") and (name.endswith("-any.whl") or f"_{arch}" in name)
    print(name if ok else f"NOT A BINARY WHEEL FOR {arch}: {name}")
    if not ok:
        bad.append(name)
sys.exit(1 if bad else 0)
EOF
    echo "build-bundle: every dependency resolves to a binary wheel for linux $ARCH, CPython $PYVER, glibc >= $GLIBC"
    exit 0
fi

# 2. Every dependency as a binary wheel for the target, beside the project's.
STAGE=$WORK/$NAME
mkdir -p "$STAGE/wheels" "$STAGE/systemd" "$STAGE/seeds" "$STAGE/docs"
cp "$PROJECT_WHEEL" "$STAGE/wheels/"
# shellcheck disable=SC2086
"$PY" -m pip download --quiet $TARGET --cache-dir "$CACHE" --dest "$STAGE/wheels" \
    "$STAGE/wheels/$(basename "$PROJECT_WHEEL")"
for f in "$STAGE"/wheels/*; do
    case "$f" in
        *.whl) ;;
        *) echo "build-bundle: $(basename "$f") is not a wheel" >&2; exit 1 ;;
    esac
done

# 3. What the installer installs besides the wheels, in the source tree's layout.
cp "$ROOT/systemd/install.sh" "$ROOT/systemd/edge-agent.service" "$STAGE/systemd/"
cp "$ROOT/seeds/gateway.yaml" "$ROOT/seeds/site.yaml" "$STAGE/seeds/"
cp "$ROOT/docs/operations.md" "$ROOT/docs/installers.md" "$STAGE/docs/"
cat > "$STAGE/install.sh" <<'EOF'
#!/bin/sh
# Offline install of this bundle: sudo ./install.sh [--start] [--root DIR] (see --help).
exec sh "$(dirname "$0")/systemd/install.sh" "$@"
EOF
chmod 0755 "$STAGE/install.sh" "$STAGE/systemd/install.sh"
cat > "$STAGE/BUNDLE" <<EOF
name=$NAME
version=$VERSION
arch=$ARCH
python=$PYVER
glibc=$GLIBC
EOF
(cd "$STAGE/wheels" && sha256sum -- *.whl > ../SHA256SUMS)

# 4. One tarball, owned by root whoever built it.
mkdir -p "$OUT"
tar --create --gzip --sort=name --owner=0 --group=0 --numeric-owner \
    --file "$OUT/$NAME.tar.gz" --directory "$WORK" "$NAME"
count=$(ls "$STAGE/wheels" | wc -l)
size=$(du -h "$OUT/$NAME.tar.gz" | cut -f1)
echo "build-bundle: $OUT/$NAME.tar.gz ($size, $count wheels: linux $ARCH, CPython $PYVER, glibc >= $GLIBC)"
