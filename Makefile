# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install translations run test lint format

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

translations: install
	$(BIN)/pybabel compile --use-fuzzy -d translations 2>&1 | grep -v '^compiling' || true

run: install translations
	$(BIN)/flask --app pro_app questionnaires check
	PRO_DEMO=1 PRO_BASE_URL=http://$(HOST):$(PORT) $(BIN)/flask --app pro_app db upgrade
	PRO_DEMO=1 PRO_BASE_URL=http://$(HOST):$(PORT) $(BIN)/flask --app pro_app demo
	PRO_DEMO=1 PRO_BASE_URL=http://$(HOST):$(PORT) $(BIN)/flask --app pro_app run --host $(HOST) --port $(PORT)

test: install translations lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
