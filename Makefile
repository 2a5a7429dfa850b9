# Two entry points for a fresh machine: `make serve` and `make test`.
# Each creates .venv and installs what it needs by itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck pytest conformance bench bench-quick bench-dualmode clean debian-packages

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `npm install`, not `npm ci`: npm 11's `ci` rejects this lock file over optional platform
# packages it leaves out (@msgpackr-extract/*), even when freshly generated. The direct
# dependencies are pinned exactly in node/package.json and the lock file holds the rest.
node/node_modules/.installed: node/package.json node/package-lock.json
	cd node && npm install --no-audit --no-fund --loglevel=error
	touch $@

# Real peers the tests run against (kcat, chromium, postgresql): tools/debian-packages.txt.
debian-packages:
	tools/ensure-debian-packages

serve: $(STAMP)
	$(BIN)/millstream serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) node/node_modules/.installed debian-packages
	$(BIN)/pytest -q

test: lint typecheck pytest

# Benchmarks (benchmarks/README.md): millstream against its peers, one table of ratios.
# The harness installs the peers itself: rakaia-streams into benchmarks/.work/, node/ via npm ci if missing.
$(VENV)/.bench-installed: $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed node/node_modules/.installed
	$(BIN)/python -m benchmarks

bench-quick: $(VENV)/.bench-installed node/node_modules/.installed
	$(BIN)/python -m benchmarks --quick

# millstream.dualmode against sse-starlette and FastAPI's StreamingResponse (about 4 minutes).
bench-dualmode: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks --suite dualmode

clean:
	rm -rf $(VENV) node/node_modules .pytest_cache .mypy_cache .ruff_cache
