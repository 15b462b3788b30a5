# SyncConsole: `make demo` to look around, `make test` to run the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUNTIME := $(VENV)/.installed-runtime
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test bench install install-dev migrate clean

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

install: $(STAMP_RUNTIME)
install-dev: $(STAMP_DEV)

migrate: install
	$(PY) manage.py migrate --noinput

demo: install
	$(PY) scripts/demo.py

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles
