# The two commands of the README. Both create the virtual environment they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-runtime
DEVSTAMP := $(VENV)/.installed-dev
export WATCHFLOOR_HOME ?= $(CURDIR)/var

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

## run: initialise var/ (first time only) and run the watch floor with the demo source on :8000
run: $(STAMP)
	$(VENV)/bin/watchfloor init --demo-watches
	$(VENV)/bin/watchfloor run --source demo

## test: install the dev dependencies and run the whole suite
test: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean:
	rm -rf $(VENV) var .pytest_cache
