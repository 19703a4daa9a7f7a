# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
PEERS_STAMP := tests/peers/node_modules/.installed-stamp

.PHONY: run worker test lint migrate bench clean peers

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

# The npm identity providers the SSO tests sign in against (PEERS.md §2-3); skipped without node, the tests say so.
$(PEERS_STAMP): tests/peers/package.json tests/peers/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/peers --no-audit --no-fund && touch $(PEERS_STAMP); \
	else echo "node/npm not found: SSO peer tests will skip (apt-get install -y nodejs npm)"; fi

peers: $(PEERS_STAMP)

test: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/readers.py
	$(BIN)/python benchmarks/imports.py
	$(BIN)/python benchmarks/exports.py

lint: $(STAMP)
	$(BIN)/ruff check app workers tests scripts benchmarks

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache tests/peers/node_modules
