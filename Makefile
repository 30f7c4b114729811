# Two commands for a newcomer: `make plan` shows the example environment, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= stacks/example.yaml
STAMP := $(VENV)/.installed

.PHONY: plan test unit lint validate venv host-deps clean checkov

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## host-deps: the Debian packages the full suite needs on this machine (as root)
HOST_PACKAGES := $(shell grep -v '^\#' tests/host-packages.txt)
host-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make host-deps installs Debian packages: run it as root" >&2; exit 2; fi
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing host packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## plan: the whole example environment, offline (no Azure account, no Pulumi CLI)
plan: $(STAMP)
	$(BIN)/blueprints plan $(STACK)

validate: $(STAMP)
	$(BIN)/blueprints validate $(STACK)

## test: lint and the full offline suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto -q

## checkov: scan every stack's ARM export; failures must be justified in validation/checkov-skips.yaml
# The scanner has its own virtualenv so its dependencies never meet Pulumi's.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

checkov: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m validation.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov --out out/checkov stacks/*.yaml

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .hypothesis
