# Two commands for a newcomer: `make plan` shows the example environment, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= stacks/example.yaml
STAMP := $(VENV)/.installed

.PHONY: plan test unit lint validate venv host-deps clean docs reference

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

## docs: the guides and generated reference as a static site in site/, built strictly (any warning fails)
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

## reference: regenerate docs/reference/ from every stack file (commit the result)
reference: $(STAMP)
	$(BIN)/blueprints docs

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
