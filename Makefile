# copytrade — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install install-dev lint backup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## make run: install, migrate, create the first master on the first run, start every process.
# `honcho run` gives the set-up steps the same environment (.env, if present) as the processes.
run: $(VENV)/.installed
	$(BIN)/honcho run $(BIN)/python manage.py migrate --noinput
	$(BIN)/honcho run $(BIN)/python manage.py bootstrap
	SANDBOX_ROUND_THE_CLOCK=$(or $(SANDBOX_ROUND_THE_CLOCK),true) \
	TRADING_ROUND_THE_CLOCK=$(or $(TRADING_ROUND_THE_CLOCK),true) \
	$(BIN)/honcho start -f Procfile

## make test: install what the tests need, then run the whole suite.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

## make backup: a consistent copy of the database into var/backups/.
backup: $(VENV)/.installed
	$(BIN)/honcho run $(BIN)/python manage.py backup

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
