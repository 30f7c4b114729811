# Two commands for a newcomer: `make plan` shows the example environment, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= stacks/example.yaml
STAMP := $(VENV)/.installed

.PHONY: plan test unit lint validate venv host-deps clean checkov checkov-venv lab-test lab-test-bastion \
	lab-test-landing-zone docs reference \
	azurite

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## host-deps: the Debian packages the full suite needs on this machine (as root)
HOST_PACKAGES := $(shell grep -v '^\#' tests/host-packages.txt)
# The suites need only nginx's program (tests/unit/test_mirror_nginx_site.py): a newly installed nginx is
# stopped, as its default site would hold port 80, where the lab's metadata stand-in listens.
host-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make host-deps installs Debian packages: run it as root" >&2; exit 2; fi
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing host packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
		&& case " $$missing " in *" nginx "*) [ ! -d /run/systemd/system ] || systemctl disable --now nginx || true;; esac; \
	fi

## plan: the whole example environment, offline (no Azure account, no Pulumi CLI)
plan: $(STAMP)
	$(BIN)/blueprints plan $(STACK)

validate: $(STAMP)
	$(BIN)/blueprints validate $(STACK)

## test: everything CI runs, as root (the lab builds machines): lint (with the import layers), then the
## offline suites (the docs drift check and strict site build among them) and the checkov gate beside
## the lab with every acceptance suite, then a second lab of the Bastion stack (lab-test-bastion). Each
## check runs once.
# Each stage's wall time goes to $(TIMINGS) and is printed as a table at the end, and also when lint
# fails (make then stops there). The offline suites and checkov compute; the lab mostly waits on boots,
# downloads and its machines: so they run beside the lab (--low-priority: nice 10, in a session of their
# own, whose share of the CPU stays equal to each lab machine's so that neither starves), with their output
# in out/make-test-<stage>.log, printed when both labs are done. A failure there fails make test at the end
# (`make unit` gives the offline suites' answer alone, sooner).
TIMINGS := out/make-test-timings.txt
STAGE = $(BIN)/python benchmarks/stage_timings.py run $(TIMINGS)
test: $(STAMP) host-deps azurite checkov-venv
	@$(BIN)/python benchmarks/stage_timings.py start $(TIMINGS)
	$(STAGE) lint --report-on-failure -- $(MAKE) --no-print-directory lint
	@echo "make test: the offline suites and checkov run beside the labs (out/make-test-offline.log, out/make-test-checkov.log)"
	@BLUEPRINTS_AZURITE_REQUIRED=1 BLUEPRINTS_CHECKOV_REQUIRED=1 $(STAGE) "offline suites" --low-priority -- \
		$(BIN)/python -m pytest -n 2 -q -m "not lab" > out/make-test-offline.log 2>&1 & offline=$$!; \
	$(STAGE) checkov --low-priority -- $(MAKE) --no-print-directory checkov > out/make-test-checkov.log 2>&1 & checkov=$$!; \
	stop() { kill $$offline $$checkov 2>/dev/null; exit $$1; }; trap 'stop 130' INT; trap 'stop 143' TERM; trap 'stop 129' HUP; \
	$(MAKE) --no-print-directory lab-test; status=$$?; \
	$(MAKE) --no-print-directory lab-test-bastion; bastion=$$?; \
	if [ $$status = 0 ]; then status=$$bastion; fi; \
	wait $$offline || status=1; wait $$checkov || status=1; \
	for stage in offline checkov; do echo "make test: $$stage, from out/make-test-$$stage.log:"; cat out/make-test-$$stage.log; done; \
	$(BIN)/python benchmarks/stage_timings.py report $(TIMINGS); exit $$status

## unit: the offline suites only (no root, no lab)
unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not lab"

## azurite: Microsoft's Azure Storage emulator (npm, pinned in tests/emulator/package-lock.json) for the
## test of the Git server's off-VM backups (tests/emulator); without it that test is skipped, except
## under `make test`, which needs it
AZURITE_STAMP := tests/emulator/node_modules/.installed
$(AZURITE_STAMP): tests/emulator/package.json tests/emulator/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq --no-install-recommends npm; } || \
		{ echo "make azurite needs npm (Debian package npm)" >&2; exit 2; }
	npm ci --prefix tests/emulator --no-audit --no-fund --loglevel=error
	@touch $@

azurite: $(AZURITE_STAMP)

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

## checkov-venv: the scanner alone (make test installs it before the offline suites, whose
## known-bad exports it must fail)
checkov-venv: $(CHECKOV_STAMP)

checkov: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m validation.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov --out out/checkov stacks/*.yaml

## lab-test: (root) the lab on $(STACK): lab up, the lab and acceptance suites, then lab down (always)
# Azurite is the airlock's storage account in the lab (lab/storage_service.py), so the lab needs it too.
# Faults come after the suites (they stop services, re-run cloud-init and reboot every machine), then
# day two (every in-place edit applied with `lab apply`); the acceptance suites then run again on the
# machines that went through both, against the edited stack.
# Exit status: the tests' (or lab up's when it fails). A lab that was already running is left alone.
# Stage timings: under `make test` they join its table (printed by it); run alone, lab-test prints its own.
# The slowest lab tests, printed after each lab suite: where the lab's time goes (issue 21).
LAB_DURATIONS := --durations=15
# The lab suites wait far more than they compute (timeouts of dropped connections, browsers, installs
# through the mirror): `blueprints lab test --workers N` runs their groups N at a time, then the tests that
# must run alone (tests/acceptance/lab_schedule.py).
LAB_WORKERS ?= 3
LAB_SUITES = $(BIN)/blueprints lab test --workers $(LAB_WORKERS)
LAB_TIMINGS_START := $(if $(filter 0,$(MAKELEVEL)),$(BIN)/python benchmarks/stage_timings.py start $(TIMINGS),true)
LAB_TIMINGS_REPORT := $(if $(filter 0,$(MAKELEVEL)),$(BIN)/python benchmarks/stage_timings.py report $(TIMINGS),true)
lab-test: $(STAMP) host-deps azurite
	@if [ "$$(id -u)" != 0 ]; then echo "make lab-test runs the lab: run it as root" >&2; exit 2; fi
	@$(LAB_TIMINGS_START); \
	$(STAGE) "lab up" -- $(BIN)/blueprints lab up $(STACK); status=$$?; \
	if [ $$status = 2 ]; then $(LAB_TIMINGS_REPORT); exit 2; fi; \
	if [ $$status = 0 ]; then \
		$(STAGE) "lab suites" -- $(LAB_SUITES) -- $(LAB_DURATIONS); \
		status=$$?; \
		BLUEPRINTS_LAB_REQUIRED=1 BLUEPRINTS_LAB_FAULTS=1 $(STAGE) faults -- $(BIN)/python -m pytest -q -p no:cacheprovider \
			tests/lab/machines/test_faults.py || status=1; \
		BLUEPRINTS_LAB_REQUIRED=1 BLUEPRINTS_LAB_UPGRADE=1 $(STAGE) "day two" -- $(BIN)/python -m pytest -q -s -p no:cacheprovider \
			tests/lab/machines/test_day_two_upgrade.py || status=1; \
		$(STAGE) "acceptance again" -- $(LAB_SUITES) --acceptance-only -- $(LAB_DURATIONS) || status=1; \
		BLUEPRINTS_LAB_REQUIRED=1 BLUEPRINTS_LAB_TEARDOWN=1 $(STAGE) teardown -- $(BIN)/python -m pytest -q -p no:cacheprovider \
			tests/lab/machines/test_lab_down.py || status=1; \
	fi; \
	$(STAGE) "lab down" -- $(BIN)/blueprints lab down; \
	$(LAB_TIMINGS_REPORT); \
	exit $$status

## lab-test-bastion: (root) a second lab, of $(BASTION_STACK) (gateway kind bastion): lab up, the suites, lab down (always)
# Its own acceptance path runs through the lab's Azure Bastion stand-in (lab/bastion.py,
# tests/acceptance/test_bastion_path.py); the suites of roles it lacks (gateway, Git server, identity
# provider, airlock) skip, naming the role. No faults or day two: the main lab proves those for the
# same roles. `make test` runs it after lab-test's lab down (one lab at a time).
BASTION_STACK ?= stacks/bastion-single-analyst.yaml
## lab-test-landing-zone: (root) a lab of $(LANDING_ZONE_STACK), a spoke of a trust's hub, behind the hub
## firewall's stand-in (lab/hub_firewall.py, tests/acceptance/test_hub_firewall.py)
LANDING_ZONE_STACK ?= stacks/landing-zone.yaml
# A lab of one more stack: lab up, the lab and acceptance suites, the teardown check, lab down (always).
# $(1): the name its stages are timed under; $(2): the stack file.
define ANOTHER_LAB
	@if [ "$$(id -u)" != 0 ]; then echo "make $@ runs the lab: run it as root" >&2; exit 2; fi
	@$(LAB_TIMINGS_START); \
	$(STAGE) "$(1) lab up" -- $(BIN)/blueprints lab up $(2); status=$$?; \
	if [ $$status = 2 ]; then $(LAB_TIMINGS_REPORT); exit 2; fi; \
	if [ $$status = 0 ]; then \
		$(STAGE) "$(1) suites" -- $(LAB_SUITES) -- -rs $(LAB_DURATIONS); \
		status=$$?; \
		BLUEPRINTS_LAB_REQUIRED=1 BLUEPRINTS_LAB_TEARDOWN=1 $(STAGE) "$(1) teardown" -- $(BIN)/python -m pytest -q \
			-p no:cacheprovider tests/lab/machines/test_lab_down.py || status=1; \
	fi; \
	$(STAGE) "$(1) lab down" -- $(BIN)/blueprints lab down; \
	$(LAB_TIMINGS_REPORT); \
	exit $$status
endef

lab-test-bastion: $(STAMP) host-deps
	$(call ANOTHER_LAB,bastion,$(BASTION_STACK))

lab-test-landing-zone: $(STAMP) host-deps
	$(call ANOTHER_LAB,landing zone,$(LANDING_ZONE_STACK))

## docs: the guides and generated reference as a static site in site/, built strictly (any warning fails)
docs: $(STAMP)
	$(BIN)/blueprints docs --check
	$(BIN)/mkdocs build --strict --quiet
	@mkdir -p out/diagrams
	dot -Tpng docs/reference/example/architecture.dot -o out/diagrams/example.png

## reference: regenerate docs/reference/ from every stack file (commit the result)
reference: $(STAMP)
	$(BIN)/blueprints docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .hypothesis
