# Two commands do everything on a fresh machine:
#   make run    start Azurite and the app on http://localhost:7071 (Ctrl-C stops both); storage
#               persists in .azurite/ (git-ignored) across runs: `make fresh run` starts empty
#   make test   set up .venv and node_modules, then run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
AZURITE_DATA ?= .azurite
PY     := $(VENV)/bin/python

.PHONY: run fresh test check setup bench clean

setup: $(VENV)/.installed node_modules/.installed

# The project itself is installed too (editable, without dependencies) for the `aos` command line.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("AOS needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	$(PY) -m devhost --azurite-location $(AZURITE_DATA)

# Delete the local storage (agents, history, queues, reminders) that `make run` keeps.
fresh:
	rm -rf $(AZURITE_DATA)

test: setup
	scripts/check

check: test

bench: setup
	$(PY) bench/entity_throughput.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache __azurite*
