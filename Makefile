# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run worker test lint migrate bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run_local.py

worker: $(STAMP)
	$(BIN)/flask --app wsgi worker

migrate: $(STAMP)
	$(BIN)/flask --app wsgi db upgrade

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/readers.py
	$(BIN)/python benchmarks/imports.py
	$(BIN)/python benchmarks/exports.py

lint: $(STAMP)
	$(BIN)/ruff check app workers tests scripts benchmarks

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache
