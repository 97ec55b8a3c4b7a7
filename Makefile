# The interface of the project: `make demo` and `make test`. Everything they need
# (virtualenv, pinned Python dependencies, localcluster binaries) is installed here.
# Every target has a `## ...` comment on its line: `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
UNIT_TESTS := tests/unit localcluster/tests/unit harness/tests/unit
E2E_TESTS := tests/e2e localcluster/tests/e2e harness/tests/e2e
# Everything else: no localcluster needed (integration tests start their own etcd and S3).
FAST_TESTS := $(UNIT_TESTS) tests/integration tests/install

.PHONY: all install lint format unit e2e test demo demo-down bench localcluster helm manifests clean help checkout-location
.DEFAULT_GOAL := all

all: install ## create the virtualenv with everything installed (the default)

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml localcluster/pyproject.toml harness/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==24.3.1
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt \
		-e '.[dev]' -e ./localcluster -e ./harness
	@touch $@

install: $(STAMP) ## virtualenv with the operator, localcluster and harness (editable) and pinned deps

lint: install ## ruff check, ruff format --check, mypy --strict over the three packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## reformat and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: install ## unit tests of the operator, localcluster and harness (no cluster needed)
	$(BIN)/pytest $(UNIT_TESTS) $(PYTEST_ARGS)

# Builds the control plane and etcd binaries once (cached outside the tree, keyed by the pins).
localcluster: install ## build (or find cached) the localcluster binaries
	$(BIN)/python -m localcluster build

# The pinned helm, for the chart's tests and `make manifests` (cached like the binaries above).
helm: install ## build (or find cached) the pinned helm
	$(BIN)/python -m localcluster helm

# localcluster runs containers from host paths, and the chart's operator pod mounts an emptyDir
# at /tmp: from a checkout under /tmp its e2e test cannot pass. Say so before, not after.
checkout-location: ## refuse to run e2e tests from a checkout under /tmp (see the comment above)
	@case "$(CURDIR)/" in /tmp/*) echo "The checkout is under /tmp ($(CURDIR)): the chart's" \
		"operator pod mounts an emptyDir at /tmp, which would hide it. Clone it elsewhere." >&2; \
		exit 1;; esac

e2e: checkout-location install localcluster helm ## end-to-end tests against localcluster
	$(BIN)/pytest $(E2E_TESTS) $(PYTEST_ARGS)

# The tests that need no localcluster run beside those that do, niced so that the cluster's
# processes keep the CPU: the suite takes about as long as its e2e part. Their report is
# printed after the e2e one.
test: checkout-location lint localcluster helm ## lint, then every test of the three packages (what CI runs)
	@log=$$(mktemp); \
	nice -n 15 $(BIN)/pytest $(FAST_TESTS) $(PYTEST_ARGS) >"$$log" 2>&1 & fast=$$!; \
	e2e=0; $(BIN)/pytest $(E2E_TESTS) $(PYTEST_ARGS) || e2e=$$?; \
	rest=0; wait $$fast || rest=$$?; \
	echo "== the tests that need no localcluster (exit $$rest):"; cat "$$log"; rm -f "$$log"; \
	test $$e2e -eq 0 && test $$rest -eq 0

manifests: install helm ## regenerate the chart's CRDs and RBAC rules, docs/api.md, rbac.md, deploy/
	$(BIN)/etcd-operator manifests
	$(BIN)/python -m harness.chart deploy/etcd-operator.yaml

demo: install localcluster helm ## start localcluster, run the operator, create a 3-member etcd cluster
	$(BIN)/python -m harness.demo

demo-down: install ## stop the demo: its operator, the etcd pods, localcluster
	$(BIN)/python -m localcluster down

bench: install localcluster ## run the benchmarks in bench/ and print figures
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

clean: ## stop localcluster, remove the virtualenv and local state
	-$(BIN)/python -m localcluster down 2>/dev/null
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .localcluster
