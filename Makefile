# Two-command quickstart: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit quick test-fast bench clean mutation property

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# The distribution was called "reconciler" before; drop that name from older venvs.
	$(BIN)/python -m pip uninstall --quiet --yes reconciler 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[emulator,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reconciler demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist); the tool's modules are compiled first, so that
# the hundreds of CLI processes the end-to-end tests start do not each compile them again
# (PYTHONDONTWRITEBYTECODE would keep them from saving the result).
#
# Twice as many workers as cores: most end-to-end tests wait (on the emulator's latency, on a
# CLI process starting), so two per core keep both cores busy (measured on 2 cores: 164 s with 4
# workers, 210 s with 2).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) * 2 )))
unit: $(STAMP)
	$(BIN)/python -m compileall -q reconciler
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The fast subset for your own loop: no end-to-end or reliability tests (real processes).
quick: $(STAMP)
	$(BIN)/pytest -q -n auto -m "not e2e and not reliability" --ignore=tests/e2e --ignore=tests/reliability

test-fast: quick

test: lint typecheck unit

# The promise's property test (tests/e2e/test_promise_property.py) with many more examples than
# `make test` runs: a longer, nightly-style search.
property: $(STAMP)
	PROMISE_PROFILE=nightly $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_promise_property.py

# Mutation testing of the core modules, each against its own tests (minutes; not part of `make
# test`): prints the score per module and writes tests/mutation-baseline.md (docs/contributing.md).
MUTATION_WORKERS ?= 2
$(VENV)/.installed-mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[emulator,dev,mutation]'
	touch $@

mutation: $(VENV)/.installed-mutation
	$(BIN)/python tools/mutation.py --workers $(MUTATION_WORKERS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants .mutation
