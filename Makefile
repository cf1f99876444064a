# Argus Telemetry developer targets. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: help venv system-deps run test lint fmt typecheck bench assets msi clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed ## create the virtualenv with the agent and test tools

system-deps: ## install the Debian packages the tests drive for real (Pushgateway, systemd, Chromium, Wine...)
	@scripts/system-deps

assets: venv ## fetch the panel's chart library from the npm registry into the package
	$(PY) -m argus_telemetry.panel.assets

run: venv assets ## run the agent with no configuration, plus the control panel
	@scripts/run-dev

lint: venv ## ruff lint + format check, mypy --strict on src/
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

fmt: venv ## format the code
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

test: system-deps lint assets ## lint, type-check and run every test (ARGS= to narrow pytest)
	$(VENV)/bin/pytest $(ARGS)

bench: venv ## print the benchmark figures (CPU s/h, RSS, µs per snapshot) side by side with node_exporter
	$(PY) bench/snapshot_cost.py
	$(PY) bench/spool_throughput.py
	$(PY) bench/flush_cost.py
	$(PY) bench/drain.py
	$(PY) bench/stream_fanout.py
	$(PY) bench/panel_cost.py
	$(PY) bench/remote_write_drain.py
	$(PY) bench/agent_vs_node_exporter.py

CA_CERT ?= packaging/windows/r3.crt
msi: venv ## build dist/argus-telemetry-<version>-x64.msi with wixl (CA_CERT=root CA file)
	$(PY) packaging/windows/build.py --ca-cert $(CA_CERT)

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
