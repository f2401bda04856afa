# `make test` and `make demo` work on a fresh machine that has only Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.immute-installed
# Installing compiles the router's hot path (setup.py), so a change there reinstalls,
# as does another IMMUTE_COMPILE (its value is remembered in a file's name).
COMPILED := $(wildcard src/immute/proxy/*.py)
CHOICE := $(VENV)/.immute-compile-$(or $(IMMUTE_COMPILE),auto)

.PHONY: test lint typecheck layers unit clean

$(STAMP): pyproject.toml setup.py $(COMPILED) $(CHOICE)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

$(CHOICE):
	mkdir -p $(VENV)
	rm -f $(VENV)/.immute-compile-*
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check setup.py src tests bench examples
	$(BIN)/ruff format --check setup.py src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck layers unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	find src -name '*.so' -delete

.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m immute.client.reference
	$(BIN)/python -m immute.cli.help_cache

.PHONY: demo
demo: $(STAMP)
	$(BIN)/python examples/demo.py $(ARGS)
