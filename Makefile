# make install   -> .venv with torch/torchaudio 2.11 (CPU use) and this package (editable, with test extras)
# make test      -> the whole test suite (installs first if needed)
# make test-fast -> the fast tier: no browser, training run, TTS engine or live server (tests/conftest.py marks the rest slow)
# make test-data -> find the tests' FSDD copy, or fetch and verify it once, and say where (tests/data_source.py)
VENV ?= .venv
PY := $(VENV)/bin/python
# An exact pair: torchaudio's compiled library loads only against the torch it was built with
# (torchaudio 2.11.1 on PyPI does not load against torch 2.11.0, the newest torch 2.11).
TORCH := torch==2.11.0 torchaudio==2.11.0

.PHONY: install test test-fast test-data system-deps

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian packages used by the recipe (espeak-ng and flite voices) and the browser test (chromium).
system-deps:
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng flite chromium chromium-driver

test: install
	$(VENV)/bin/pytest -q

test-fast: install
	$(VENV)/bin/pytest -q -m "not slow"

# ASR_TEST_DATA (a folder holding fsdd/), else ../shared/data, else the cache
# (ASR_TEST_CACHE, default ~/.cache/asr-tests) filled from the pinned archive (ASR_TEST_DATA_URL overrides).
test-data: install
	$(PY) tests/data_source.py
