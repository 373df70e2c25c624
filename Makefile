# Preflight — every target installs what it needs first, from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest install system-deps node-deps migrate demo bench lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Preflight needs Python 3.12 or newer; $(PYTHON) is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $(STAMP)

# A random Django secret key for local use (run, test); production sets SECRET_KEY instead.
var/secret-key: | $(BIN)/python
	@mkdir -p var
	@umask 077; $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

install: $(STAMP) var/secret-key

# Debian packages the test suite needs (Chromium for browser tests, poppler for
# reading PDFs back, Prometheus for the connector's test against a real server).
# Installed only when running as root and missing.
system-deps:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	  fc-list 2>/dev/null | grep -qi dejavu || missing="$$missing fonts-dejavu-core"; \
	  command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	  if [ -n "$$missing" ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	fi

# promptfoo, pinned by tools/promptfoo/package-lock.json, for the tests that run it and read
# its fresh output. Install scripts stay off: promptfoo needs none, and those of its optional
# dependencies download browsers and model runtimes. Without npm those tests skip (fail in CI).
NODE_STAMP := tools/promptfoo/node_modules/.installed
ifneq ($(shell command -v npm 2>/dev/null),)
node-deps: $(NODE_STAMP)
else
node-deps:
	@echo "npm not found: the tests that run promptfoo will skip (and fail with CI=true)."
endif

$(NODE_STAMP): tools/promptfoo/package.json tools/promptfoo/package-lock.json
	cd tools/promptfoo && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: export SITE_URL ?= http://$(HOST):$(PORT)
demo: migrate
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)/

# Serve the demo at http://$(HOST):$(PORT) with a Celery worker and beat beside it.
# Ctrl-C stops all three.
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: demo
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/celery -A readiness worker --loglevel=INFO --concurrency=2 & \
	$(BIN)/celery -A readiness beat --loglevel=INFO & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

pytest: install system-deps node-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Each benchmark prints its figures; set DATABASE_URL to a PostgreSQL server for the
# concurrency figures (they use throwaway databases and drop them afterwards), and
# REDIS_URL for the check sweep (it starts real Celery workers; without it, it says so).
BENCHMARKS := benchmarks/audit.py benchmarks/verify.py benchmarks/pages.py benchmarks/sweep.py benchmarks/reports.py
bench: install
	@for script in $(BENCHMARKS); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Re-pin dependencies after editing requirements*.in.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile -q --python-version 3.12 requirements.in -o requirements.lock
	$(BIN)/uv pip compile -q --python-version 3.12 requirements-dev.in -o requirements-dev.lock

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
