# The two front-door commands: `make run` starts the whole system, `make test` tests it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench clean-data lock contracts

$(INSTALLED): requirements.lock requirements-dev.lock
	@bash deploy/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@touch $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m deploy.local_stack

test: $(INSTALLED)
	@bash deploy/test-tools.sh "$(VENV)"
	$(PY) -m pytest

bench: $(INSTALLED)
	set -e; for name in flow routing reservations pack_run hot_sku emails auth costs growth ceilings bulk api_views; do \
		$(PY) -m bench.$$name; \
	done

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services deploy bench tests

# docs/schemas/v1/ and docs/asyncapi.yaml from the catalog (refuses a change that breaks a v1 consumer).
contracts: $(INSTALLED)
	$(PY) -m deploy.contracts

clean-data:
	rm -rf .local

# requirements.lock: the runtime closure (what the image installs); requirements-dev.lock: the dev extra on top.
lock: $(INSTALLED)
	$(PY) -m deploy.lock
