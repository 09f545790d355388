# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv with pip.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DEMO_OUT := artifacts/demo

.PHONY: demo test lint install install-train bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# torch is installed first and pinned exactly, so no later requirement can pull a CUDA build.
$(VENV)/.stamp-train: pyproject.toml | $(VENV)/bin/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[train,signing]"
	touch $@

$(VENV)/.stamp-all: pyproject.toml $(VENV)/.stamp-train
	$(PIP) install -e ".[all,dev]"
	touch $@

install-train: $(VENV)/.stamp-train
install: $(VENV)/.stamp-all

demo: install-train
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/provenir train examples/sft_tiny.yaml
	$(VENV)/bin/provenir manifest verify $(DEMO_OUT)/manifests/*.json
	$(VENV)/bin/provenir reproduce $$(ls $(DEMO_OUT)/manifests/*.json)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src/provenir

bench: install
	$(PY) bench/overhead.py
	$(PY) bench/hash.py

clean:
	rm -rf artifacts .pytest_cache
