# Two commands do everything on a fresh Debian machine:
#   make demo   - create the venv, install, run the embedded demo site
#   make test   - create the venv, install test tools (socat, mosquitto), lint, type-check,
#                 run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Numba compiles once into a writable cache, never into the source tree.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: all venv demo test lint typecheck format test-deps bench clean

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

# mypy on edge_agent/ and drivers/ ([tool.mypy] in pyproject.toml; dsp's kernels excluded).
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

clean:
	rm -rf $(VENV) .cache .pytest_cache build *.egg-info
