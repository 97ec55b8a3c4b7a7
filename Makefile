# The interface of the project: `make demo` and `make test`. Everything they need
# (virtualenv, pinned Python dependencies, localcluster binaries) is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all install lint format unit e2e test demo demo-down bench localcluster manifests clean help

all: install

help:
	@echo "make demo   - start localcluster, run the operator, create a 3-member etcd cluster"
	@echo "make test   - lint, type-check, unit and end-to-end tests (builds what it needs)"
	@echo "make lint   - ruff + mypy only"
	@echo "make bench  - run the benchmarks in bench/ and print figures"
	@echo "make clean  - remove the virtualenv and local state"

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==24.3.1
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# Builds the control plane and etcd binaries once (cached outside the tree, keyed by the pins).
localcluster: install
	$(BIN)/python -m localcluster build

e2e: install localcluster
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test: lint localcluster
	$(BIN)/pytest tests $(PYTEST_ARGS)

manifests: install
	$(BIN)/etcd-operator manifests --output deploy

demo: install localcluster
	$(BIN)/python -m localcluster.demo

demo-down: install
	$(BIN)/python -m localcluster down

bench: install localcluster
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

clean:
	-$(BIN)/python -m localcluster down 2>/dev/null
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .localcluster
