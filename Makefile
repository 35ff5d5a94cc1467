# seqferry — one command surface for people, hooks and CI.
#   make dev    install, then run the whole system on the embedded emulator (moto server)
#   make test   install, then lint, type-check and run the full test suite
#   .venv/bin/seqferry --help   the command line (installed by make install)

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.seqferry-installed
MEMBERS := shared services/scheduler services/executor services/adhoc services/simulator services/notifier cli
PYTEST_ARGS ?=

.PHONY: install dev test lint deps typecheck schemas schemas-check unit integration system-deps docker-engine images \
	test-images bench bench-quick faults mutants clean

$(STAMP): constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,$(MEMBERS))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-r requirements-dev.txt $(foreach m,$(MEMBERS),-e $(m)[test])
	@touch $@

install: $(STAMP)

# Headless Chromium for the dashboard browser test (Debian packages); the test skips, saying why, without it.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium + chromium-driver (Debian) for the browser test"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
				|| echo "could not install chromium; the browser test will be skipped"; \
		else echo "chromium missing and not root: the browser test will be skipped"; fi; \
	fi

# A Docker engine for the container tier: one that answers, else (root + apt) Debian's docker.io and a dockerd
# started in the background; else the tier is skipped, saying why. Never fails.
docker-engine:
	@deploy/docker/engine.sh

# The five service images and the emulator image (deploy/docker/images.py says which Python base it used).
images:
	@deploy/docker/engine.sh --require
	$(PYTHON) deploy/docker/images.py

# What `make test` builds for the container tier: the images where an engine answers, else nothing.
test-images: docker-engine
	@if deploy/docker/engine.sh --check; then $(PYTHON) deploy/docker/images.py; \
	else echo "no Docker engine answers: images not built, the container tier will be skipped"; fi

dev: install
	@mkdir -p var/nas var/state var/log
	$(BIN)/honcho -e dev.env -f Procfile start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Each member declares what it imports: its code its dependencies, its tests those and its test extra (deptry).
deps: install
	$(BIN)/python tools/member_deps.py $(MEMBERS)

# mypy strict for every member (pyproject.toml)
typecheck: install
	$(BIN)/mypy -p seqferry_shared -p seqferry_scheduler -p seqferry_executor -p seqferry_adhoc -p seqferry_simulator \
		-p seqferry_notifier -p seqferry_cli

schemas: install
	$(BIN)/seqferry-schemas docs/events

schemas-check: install
	$(BIN)/seqferry-schemas --check docs/events

unit: install
	$(BIN)/pytest -q shared/tests/unit $(wildcard services/*/tests/unit) cli/tests/unit $(PYTEST_ARGS)

# Integration tiers: everything but the fault tier in parallel workers (the tests mostly wait on the emulator and
# on the processes they start; a test file stays on one worker, see conftest.py), then the fault tier on its own,
# since it measures recovery times of whole stacks.
PYTEST_WORKERS ?= 4
integration: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not faults" \
		shared/tests/integration $(wildcard services/*/tests/integration) cli/tests/integration tests $(PYTEST_ARGS)
	$(BIN)/pytest -q -m faults tests/faults $(PYTEST_ARGS)

test: install system-deps docker-engine lint deps typecheck schemas-check unit test-images integration

# The fault tier's soak (tests/faults, profile soak): crashes, outages, throttling, duplicates, poison, NAS
# faults, load; then docs/reliability.md is written from what it measured. On demand; make test runs the short
# profile of the same tests.
FAULTS_RESULTS := var/faults/results.jsonl
faults: install system-deps
	@mkdir -p var/faults && rm -f $(FAULTS_RESULTS)
	SEQFERRY_FAULTS_PROFILE=soak SEQFERRY_FAULTS_REPORT=$(FAULTS_RESULTS) \
		$(BIN)/pytest -q tests/faults -m faults -o addopts="--strict-markers -ra --import-mode=importlib" \
		--timeout=3600 $(PYTEST_ARGS); status=$$?; \
		$(BIN)/python tests/faults/report.py $(FAULTS_RESULTS) docs/reliability.md; exit $$status

# Mutation testing of the data-safety code (tests/mutation/targets.toml), on demand: cosmic-ray mutants, one at a
# time, each against the tests that defend that code; then docs/mutation.md is written from the results.
# MUTANTS="name..." runs only those targets (the report keeps the latest result of the others);
# MUTANTS_ARGS: --budget MIN stops each target after MIN minutes (what is left is reported as not run);
# --resume runs what a target's last session left; --survivors runs its surviving mutants again (after new tests).
MUTANTS ?=
MUTANTS_ARGS ?=
mutants: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -r tests/mutation/requirements.txt
	$(BIN)/python tests/mutation/mutants.py --report docs/mutation.md $(MUTANTS_ARGS) $(MUTANTS)

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/requirements.txt
	$(BIN)/python bench/run.py

bench-quick: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/requirements.txt
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
