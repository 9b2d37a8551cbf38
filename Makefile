# Every target creates its own virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo gets its own environment with the library alone: no linters, test tools or benchmark peers.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: venv test lint typecheck demo bench loc clean

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,redis,bench]'
	touch $(STAMP)

$(DEMO_STAMP): setup.py pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	touch $(DEMO_STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check flask_authgear tests examples benchmarks
	$(BIN)/ruff format --check flask_authgear tests examples benchmarks
	$(BIN)/mypy

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Code lines of the package: no blanks, comments or docstrings.
loc:
	$(PYTHON) -m benchmarks.loc flask_authgear

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
