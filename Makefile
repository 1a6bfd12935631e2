# Landmark recognition platform. `make help` lists the targets.
# Every target that runs Python creates .venv first and installs the pinned dependencies.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD ?= build
# Pass options to pytest, e.g. `make test PYTEST_ARGS="-k ingest -x"`.
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The stamp is rebuilt when pyproject.toml changes. flock keeps parallel make calls
# from installing into the same venv at once.
$(VENV)/.installed: pyproject.toml
	@flock $(VENV).lock bash -c '\
	  set -euo pipefail; \
	  [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --upgrade "pip>=25"; \
	  $(BIN)/python -m pip install --quiet --editable ".[train,dev]"; \
	  touch $@'
	@echo "venv ready: $(VENV)"

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the pinned dependencies

.PHONY: test
test: venv ## Run lint and the test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## Lint and format-check the code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: fmt
fmt: venv ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: demo
demo: venv ## Run the whole pipeline locally on the embedded dataset (no cluster)
	$(BIN)/python -m pipelines.run_local --workdir $(BUILD)/demo

.PHONY: data
data: venv ## Generate the embedded synthetic dataset into $(BUILD)/data
	$(BIN)/landmarks make-data --out $(BUILD)/data

.PHONY: compile
compile: venv ## Compile the pipeline to $(BUILD)/pipeline.yaml
	$(BIN)/python -m pipelines.compile $(BUILD)/pipeline.yaml

.PHONY: clean
clean: ## Remove build outputs and demo runs (keeps .venv)
	rm -rf $(BUILD) .pytest_cache

.PHONY: distclean
distclean: clean ## Remove everything make created, the venv included
	rm -rf $(VENV) $(VENV).lock

# Area-specific targets (test cluster, charts, images, benchmarks) live beside this file.
include $(sort $(wildcard mk/*.mk))
