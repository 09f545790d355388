# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv with pip.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PROVENIR := $(VENV)/bin/provenir
# What the README's "Using it" section runs: training, signing, evaluation, scans and model
# cards, reports and the REST API.
DEMO_EXTRAS := train,signing,eval,governance,report,api
# The demo run's id, so the demo verifies and replays its own run and never another one.
DEMO_RUN_ID := $(VENV)/demo-run-id
# Extra `provenir train` arguments for the demo run (the tests pass `--set backend=stub`).
DEMO_ARGS ?=

.PHONY: demo test lint install install-demo install-train bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# torch is installed first and pinned exactly, so no later requirement can pull a CUDA build.
$(VENV)/.stamp-demo: pyproject.toml | $(VENV)/bin/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[$(DEMO_EXTRAS)]"
	touch $@

$(VENV)/.stamp-all: pyproject.toml $(VENV)/.stamp-demo
	$(PIP) install -e ".[all,dev]"
	touch $@

install-demo: $(VENV)/.stamp-demo
install-train: install-demo
install: $(VENV)/.stamp-all

# Runs accumulate in artifacts/ ($PROVENIR_OUTPUT_DIR): running the demo again adds a run, never deletes one.
demo: install-demo
	$(PROVENIR) train examples/sft_tiny.yaml --run-id-file $(DEMO_RUN_ID) $(DEMO_ARGS)
	$(PROVENIR) manifest verify $$(cat $(DEMO_RUN_ID))
	$(PROVENIR) reproduce $$(cat $(DEMO_RUN_ID))
	@echo "next: . $(VENV)/bin/activate, then the commands under 'Using it' in README.md"

# The web console's browser tests drive Debian's chromium (never a downloaded browser); here a
# missing browser fails them instead of skipping them.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: install $(CHROMIUM)
	PROVENIR_CHROMIUM=$(CHROMIUM) PROVENIR_REQUIRE_BROWSER=1 $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src/provenir

bench: install
	$(PY) bench/overhead.py
	$(PY) bench/hash.py

# Runs in artifacts/ are the user's records: clean never deletes them.
clean:
	rm -rf .pytest_cache
