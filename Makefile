# ARIA — two commands do all the set-up on a fresh machine:
#   make run    set up what is missing, then chat with the embedded default model (offline)
#   make test   set up what is missing (dev tools too), then lint, type-check and run every test
#
# Each step is idempotent and skipped when already done, so both are fast the second time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARIA   := $(VENV)/bin/aria
STAMPS := $(VENV)/.stamps
# axe-core (MPL-2.0), the accessibility engine the browser tests inject into the page:
# fetched from npm at set-up into the venv, never committed or shipped with ARIA.
AXE_VERSION := 4.14.1
AXE    := $(VENV)/npm/node_modules/axe-core/axe.min.js

.PHONY: run serve test check lint fmt typecheck test-fast setup setup-dev system llama model clean bitnet

run: setup
	$(ARIA) chat

serve: setup
	$(ARIA) api start --port 3000

test: setup-dev check

check: lint typecheck
	$(PY) -m pytest

test-fast: setup-dev
	$(PY) -m pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check aria tests benchmarks scripts
	$(VENV)/bin/ruff format --check aria tests benchmarks scripts

fmt:
	$(VENV)/bin/ruff format aria tests benchmarks scripts
	$(VENV)/bin/ruff check --fix aria tests benchmarks scripts

typecheck:
	$(VENV)/bin/mypy

setup: system $(STAMPS)/core llama model

setup-dev: setup $(STAMPS)/dev $(AXE)

system:
	@bash scripts/system_deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(PY) -m pip install --quiet --upgrade pip || { rm -rf $(VENV); exit 1; }

$(STAMPS)/core: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: pyproject.toml $(STAMPS)/core
	$(PY) -m pip install --quiet -e ".[dev]"
	@mkdir -p $(STAMPS) && touch $@

$(AXE):
	npm install --prefix $(VENV)/npm --no-save --no-audit --no-fund --silent axe-core@$(AXE_VERSION)

llama: $(STAMPS)/core
	$(PY) scripts/install_llama.py

model: $(STAMPS)/core
	$(ARIA) model ensure-default

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Opt-in: build bitnet.cpp's server (needs GitHub access, clang >= 18) for I2_S models such as
# BitNet b1.58 2B-4T. `make bitnet SOURCE=DIR` builds from a `git clone --recursive` instead.
bitnet: setup
	@command -v clang-19 >/dev/null || command -v clang-18 >/dev/null || apt-get install -y clang-19
	$(ARIA) engine install bitnet $(if $(SOURCE),--source $(SOURCE),)
