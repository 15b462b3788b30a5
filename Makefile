# SyncConsole: `make demo` to look around, `make test` to run the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUNTIME := $(VENV)/.installed-runtime
STAMP_DEV := $(VENV)/.installed-dev
# Third-party servers the tests run as peers (json-server); npm ci empties
# node_modules first, so the stamp inside it goes when the packages go.
PEERS := tests/peers
STAMP_PEERS := $(PEERS)/node_modules/.installed

.PHONY: demo test bench bench-pages install install-dev migrate clean

# Development mode, explicitly: without DEBUG on, the settings refuse to
# start unless every production setting is given.
demo test bench migrate: export DEBUG = on

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUNTIME): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUNTIME)

$(STAMP_PEERS): $(PEERS)/package.json $(PEERS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(PEERS) --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: the tests marked jsonserver will skip ($(PEERS)/package.json)"; \
	fi

install: $(STAMP_RUNTIME)
install-dev: $(STAMP_DEV) $(STAMP_PEERS)

migrate: install
	$(PY) manage.py migrate --noinput

demo: install
	$(PY) scripts/demo.py

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(PY) bench/run.py

# Page speed on a big generated dataset, measured as production serves it:
# DEBUG off (bench/pages.py supplies the production settings a scratch
# database needs). BENCH_PAGES_ARGS="--scale 0.1" for a quick run.
bench-pages: export DEBUG = off
bench-pages: install-dev
	$(PY) bench/pages.py $(BENCH_PAGES_ARGS)

clean:
	rm -rf $(VENV) $(PEERS)/node_modules db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles
