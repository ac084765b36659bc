# Two commands do everything on a fresh Debian machine:
#   make demo   - create the venv, install, run the embedded demo site
#   make test   - create the venv, install test tools (socat, mosquitto), lint, type-check,
#                 run the tests
# And for gateways with no network at the kerb (docs/installers.md):
#   make bundle BUNDLE_ARCH=aarch64 BUNDLE_PYTHON=3.11   - the offline installer tarball
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Numba compiles once into a writable cache, never into the source tree: one directory per
# version of dsp's sources (numba alone would keep a kernel compiled against another file's
# old code; edge_agent/kernel_cache.py), the directories of older sources removed.
KERNEL_CACHE := $(shell $(PYTHON) -c 'import sys; sys.path.insert(0, "."); from pathlib import Path; from edge_agent.kernel_cache import kernel_cache_dir; print(kernel_cache_dir(Path(".cache/numba").resolve()))' 2>/dev/null)
export NUMBA_CACHE_DIR ?= $(if $(KERNEL_CACHE),$(KERNEL_CACHE),$(CURDIR)/.cache/numba)

# The offline bundle's target: CPU (x86_64, aarch64), CPython (3.11-3.13), oldest glibc.
BUNDLE_ARCH   ?= $(shell uname -m)
BUNDLE_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
BUNDLE_GLIBC  ?= 2.28
BUNDLE_OUT    ?= dist

.PHONY: all venv demo test lint typecheck format test-deps bench bundle bundle-check clean sparkplug-proto

all: test

$(STAMP): pyproject.toml
	@scripts/ensure-python.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-agent demo

test-deps:
	@scripts/ensure-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on edge_agent/, drivers/, sitemodel/ and yamlread/ ([tool.mypy] in pyproject.toml; dsp's kernels excluded).
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) test-deps lint typecheck
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/modbus_poll.py
	$(BIN)/python benchmarks/dsp.py
	$(BIN)/python benchmarks/uplink.py
	$(BIN)/python benchmarks/daemon.py

# One tarball: the wheel, every dependency as a binary wheel for the target, the unit, the
# example config and site, install.sh (offline). bundle-check only resolves (no download).
bundle: $(STAMP)
	scripts/build-bundle.sh --arch $(BUNDLE_ARCH) --python $(BUNDLE_PYTHON) --glibc $(BUNDLE_GLIBC) --out $(BUNDLE_OUT)

bundle-check: $(STAMP)
	scripts/build-bundle.sh --arch $(BUNDLE_ARCH) --python $(BUNDLE_PYTHON) --glibc $(BUNDLE_GLIBC) --resolve-only

# Regenerate the Sparkplug B protobuf module from the official .proto kept in the tree (only
# after replacing the .proto; the generated module is committed). grpcio-tools lives in a
# throwaway venv: it is no dependency of edge-agent.
SPB_DIR := edge_agent/integrations/sparkplug
sparkplug-proto:
	$(PYTHON) -m venv .cache/protogen
	.cache/protogen/bin/python -m pip install --quiet grpcio-tools
	cd $(SPB_DIR) && $(CURDIR)/.cache/protogen/bin/python -m grpc_tools.protoc -I. --python_out=. sparkplug_b.proto

clean:
	rm -rf $(VENV) .cache .pytest_cache build dist *.egg-info
