# The two commands of a fresh machine: `make up` and `make test` (only python3 needed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test faults venv clean

up: $(STAMP)
	$(BIN)/aaltohub up

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow"

# The fault suite (tests/faults, marked slow): kill -9, stalls, full disk; a few minutes.
faults: $(STAMP)
	$(BIN)/pytest -m slow tests/faults

venv: $(STAMP)

# Re-install when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
