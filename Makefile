# Two commands for a newcomer: `make plan` shows the example environment, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= stacks/example.yaml
STAMP := $(VENV)/.installed

.PHONY: plan test unit lint validate venv clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## plan: the whole example environment, offline (no Azure account, no Pulumi CLI)
plan: $(STAMP)
	$(BIN)/blueprints plan $(STACK)

validate: $(STAMP)
	$(BIN)/blueprints validate $(STACK)

## test: lint and the full offline suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
