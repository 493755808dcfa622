# veche: `make run` starts the stack, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The LiveKit server (the SFU), built from its Go module by `make install` into .bin/.
# 1.13.5 is the newest release that `go install` can build from the Go module proxy: later
# ones replace pion modules with forks the proxy does not serve.
LIVEKIT_VERSION := 1.13.5
BIN := $(CURDIR)/.bin
export PYTHONPATH := $(CURDIR)/services:$(CURDIR)/services/media-token:$(CURDIR)/deploy/local

.PHONY: install livekit run test lint fmt bench fuzz clean

install: $(VENV)/.installed livekit

livekit:
	@deploy/local/install-livekit.sh $(LIVEKIT_VERSION) $(BIN)

$(VENV)/.installed: requirements.lock pyproject.toml $(wildcard web/package-lock.json)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	if [ -f web/package-lock.json ]; then cd web && npm ci --no-audit --no-fund --loglevel=error; fi
	touch $@

run: install
	$(PY) deploy/local/run.py

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check services tests gateway deploy/local
	$(VENV)/bin/mypy services/common services/rooms services/chat services/janitor services/media-token/media_token

fmt: install
	$(VENV)/bin/ruff format services tests gateway deploy/local

fuzz: install
	$(PY) tests/fuzz/fuzz.py $(FUZZ_EXAMPLES)

bench: install
	$(PY) tests/bench/run.py

clean:
	rm -rf .run .pytest_cache
