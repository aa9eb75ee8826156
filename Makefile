# The template's own tooling. `make demo` shows the defaults running; `make test` runs every test.

PYTHON ?= python3
VENV ?= .venv
# Reinstalled whenever requirements-dev.txt changes.
VENV_STAMP := $(VENV)/.requirements-dev.txt
PYTEST_ARGS ?=

# Where `make demo` bakes the defaults, and what it serves on.
DEMO_DIR ?= demo
DEMO_SLUG ?= live_todos
DEMO_PROJECT := $(DEMO_DIR)/$(DEMO_SLUG)
DEMO_VENV := $(DEMO_PROJECT)/.venv
DEMO_ADDR ?= 127.0.0.1:8000
# `make demo` bakes with cookiecutter alone (requirements-dev.txt's pin), in a venv of its own:
# the rest of the dev toolchain (Playwright, cruft...) is for `make test`.
BAKE_VENV := .cache/bake-tool
BAKE_STAMP := $(BAKE_VENV)/.requirements-dev.txt

.PHONY: test lint demo bench clean clean-demo

test: $(VENV_STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The benchmarks (about 45 to 60 minutes on 2 cores): tables, and benchmarks/results/*.json and *.png.
# Fan-out (BENCH_ARGS go to it), then distinct subscriptions (a write's server CPU, queries and
# latency as N sockets each hold a subscription of their own: searches, tokens, per-user views),
# then what the live layer adds to a write (Django alone, the capture triggers, as shipped), then
# the capture latency (a write's commit to its frame, per write path, on PostgreSQL and SQLite),
# then sustained throughput (the highest write rate 200 subscribers keep up with, live and floor),
# then capacity (memory per socket, churn, slow sockets beside fast ones; its figure shows
# throughput's too), then hostile clients (what one client's work costs 100 others, with the
# per-client budget and without), then resume against snapshot (the bytes and time for a client
# back after 10 s away to be exact again), on Daphne and Uvicorn.
bench: $(VENV_STAMP)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r benchmarks/requirements.txt
	$(VENV)/bin/python -m benchmarks.fanout $(BENCH_ARGS)
	$(VENV)/bin/python -m benchmarks.distinct
	$(VENV)/bin/python -m benchmarks.write_cost
	$(VENV)/bin/python -m benchmarks.capture_latency
	$(VENV)/bin/python -m benchmarks.throughput --no-plot
	$(VENV)/bin/python -m benchmarks.capacity
	$(VENV)/bin/python -m benchmarks.hostile
	$(VENV)/bin/python -m benchmarks.resume

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check harness tests hooks benchmarks

# A fresh venv when the pins change, so a removed or downgraded package does not linger.
$(VENV_STAMP): requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	cp requirements-dev.txt $@

$(BAKE_STAMP): requirements-dev.txt
	rm -rf $(BAKE_VENV)
	$(PYTHON) -m venv $(BAKE_VENV)
	$(BAKE_VENV)/bin/python -m pip install --disable-pip-version-check --quiet \
		"$$(grep -m 1 '^cookiecutter==' requirements-dev.txt)"
	cp requirements-dev.txt $@

# An existing demo is reused (with its database and any edits), never baked over. --no-compile:
# Python compiles the modules the demo imports when it first imports them, not all of them now.
demo: $(BAKE_STAMP)
	@if [ -d "$(DEMO_PROJECT)" ]; then \
		echo "Reusing $(DEMO_PROJECT) (make clean-demo to start over)"; \
	else \
		$(BAKE_VENV)/bin/cookiecutter . --no-input --default-config --output-dir $(DEMO_DIR); \
	fi
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --disable-pip-version-check --quiet --no-compile \
		-r $(DEMO_PROJECT)/requirements.txt
	cd $(DEMO_PROJECT) && .venv/bin/python manage.py migrate --noinput
	cd $(DEMO_PROJECT) && .venv/bin/python manage.py seed_demo
	cd $(DEMO_PROJECT) && .venv/bin/python manage.py runserver $(DEMO_ADDR)

clean-demo:
	rm -rf $(DEMO_DIR)

clean: clean-demo
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
	find harness tests hooks benchmarks -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
