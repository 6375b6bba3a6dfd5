# driftless: `make run` installs and runs the main job; `make test` installs and runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-oldest lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned by constraints.txt, so no other package can pull a CUDA build
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/driftless run

# one worker per core (pytest-xdist); tests sharing an expensive fixture run on one worker (loadgroup)
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto --dist loadgroup

# the suite against the lowest versions pyproject.toml declares, in a venv of its own
OLDEST := .venv-oldest
$(OLDEST)/.installed: pyproject.toml scripts/lowest_versions.py
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet --upgrade pip
	$(PYTHON) scripts/lowest_versions.py > $(OLDEST)/constraints.txt
	$(OLDEST)/bin/pip install --quiet -c $(OLDEST)/constraints.txt torch
	$(OLDEST)/bin/pip install --quiet -c $(OLDEST)/constraints.txt -e ".[dev]"
	touch $(OLDEST)/.installed

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/pip list --format=freeze | grep -i -E '^(torch|transformers|lightning|numpy)=='
	HF_HUB_OFFLINE=1 $(OLDEST)/bin/python -m pytest -q -n auto --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(OLDEST) build dist src/*.egg-info .pytest_cache
