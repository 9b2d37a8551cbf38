# Every target creates its own virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo gets its own environment with the library alone: no linters, test tools or benchmark peers.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
# The call deadline of core/http.py is built on urllib3's connection classes: its tests run on both majors.
URLLIB3_1_VENV := .venv-urllib3-1
URLLIB3_1_STAMP := $(URLLIB3_1_VENV)/.installed

.PHONY: venv test test-urllib3-1 lint typecheck demo docs bench loc clean

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench,docs]'
	touch $(STAMP)

$(DEMO_STAMP): setup.py pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	touch $(DEMO_STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(URLLIB3_1_STAMP): setup.py pyproject.toml
	test -x $(URLLIB3_1_VENV)/bin/python || $(PYTHON) -m venv $(URLLIB3_1_VENV)
	$(URLLIB3_1_VENV)/bin/python -m pip install -q -e '.[dev]' 'urllib3==1.26.*'
	touch $(URLLIB3_1_STAMP)

# Every test that calls Authgear or reads the resolver cache, on urllib3 1.26 (`make test` runs them on 2.x).
test-urllib3-1: $(URLLIB3_1_STAMP)
	$(URLLIB3_1_VENV)/bin/python -m pytest -q tests/core/test_deadline.py tests/core/test_resolver.py tests/testing/test_faults.py \
		tests/core/test_jwks.py tests/core/test_cache.py tests/stacks/test_shared_ttl.py tests/stacks/test_redis.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check flask_authgear tests examples benchmarks docs
	$(BIN)/ruff format --check flask_authgear tests examples benchmarks docs
	$(BIN)/mypy

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python examples/demo.py

# Warnings are errors; every page is read again, so a warning is never hidden by an older build.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Code lines of the package: no blanks, comments or docstrings.
loc:
	$(PYTHON) -m benchmarks.loc flask_authgear

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(URLLIB3_1_VENV) docs/_build build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
