# `make test` and `make demo` work on a fresh machine that has only Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.immute-installed

.PHONY: test lint typecheck layers unit clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck layers unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m immute.client.reference
	$(BIN)/python -m immute.cli.help_cache

.PHONY: demo
demo: $(STAMP)
	$(BIN)/python examples/demo.py $(ARGS)
