# veche: `make run` starts the stack, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# uv (from PyPI, pinned) manages .venv from uv.lock; it lives in a small venv of its own.
UV_VERSION := 0.13.9
UV := $(CURDIR)/.bin/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
# The LiveKit server (the SFU), built from its Go module by `make install` into .bin/.
# 1.13.5 is the newest release that `go install` can build from the Go module proxy: later
# ones replace pion modules with forks the proxy does not serve.
LIVEKIT_VERSION := 1.13.5
# kustomize, built from its Go module into .bin/ for `make lint`'s check of deploy/k8s. 5.8.2 is
# the newest release Go 1.26 builds (5.8.3 asks for Go 1.27).
KUSTOMIZE_VERSION := 5.8.2
# Docker Compose v2, built from its Go module for `make lint`'s check of deploy/compose*.yaml:
# 2.40.3 is the last release of the /v2 module.
COMPOSE_VERSION := 2.40.3
BIN := $(CURDIR)/.bin
# The browser client as web/server.py serves it, built by web/build.mjs (esbuild) from
# web/static; its manifest is written last, so it stands for the whole build.
WEB_DIST := web/dist/manifest.json

.PHONY: install web livekit kustomize run test unit lint fmt bench fuzz clean

install: $(VENV)/.installed $(WEB_DIST) livekit kustomize
	@deploy/local/install-compose.sh $(COMPOSE_VERSION) $(BIN)

livekit:
	@deploy/local/install-livekit.sh $(LIVEKIT_VERSION) $(BIN)

kustomize:
	@deploy/local/install-kustomize.sh $(KUSTOMIZE_VERSION) $(BIN)

$(UV):
	$(PYTHON) -m venv .bin/uv
	.bin/uv/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml) gateway/pyproject.toml web/pyproject.toml deploy/local/pyproject.toml $(wildcard web/package-lock.json)
	$(UV) sync --frozen --python $(PYTHON)
	if [ -f web/package-lock.json ]; then cd web && npm ci --no-audit --no-fund --loglevel=error; fi
	touch $@

# Rebuilt whenever a source of the client, the build script or the pinned packages change.
$(WEB_DIST): $(VENV)/.installed web/build.mjs web/package-lock.json $(wildcard web/static/* web/static/icons/*)
	cd web && node build.mjs

# `make web` rebuilds the client after an edit in web/static (a running server serves the new
# build at once).
web: $(WEB_DIST)

# REPLICAS=N: N processes each of rooms, chat and media-token (default 1).
run: install
	$(PY) -m veche.local.run

# REPLICAS=N runs the e2e stack with N replicas of rooms, chat and media-token.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests that need no server: seconds, nothing started.
unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check services tests gateway deploy
	$(VENV)/bin/ruff format --check services tests gateway deploy
	cd web && node_modules/.bin/eslint . && node_modules/.bin/tsc -p tsconfig.json
	$(PY) -m veche.local.settings_doc --check
	$(PY) deploy/traefik/generate.py --check
	$(PY) -m veche.local.check_k8s --kustomize $(BIN)/kustomize
	$(PY) -m veche.local.check_compose --compose $(BIN)/docker-compose
	$(PY) -m veche.local.check_a11y
	$(VENV)/bin/mypy -p veche.common -p veche.rooms -p veche.chat -p veche.janitor -p veche.media_token -p veche.gateway -p veche.local

fmt: install
	$(VENV)/bin/ruff format services tests gateway deploy

fuzz: install
	$(PY) -m tests.fuzz.fuzz $(FUZZ_EXAMPLES)

bench: install
	$(PY) -m tests.bench.run

clean:
	rm -rf .run .pytest_cache
