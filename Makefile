# The two commands a new user needs: `make demo` and `make test` (ruff, mypy, pytest). Both create the virtual
# environment and install the project on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest processes (pytest-xdist; each test file stays in one process): 2 suits a 2-core machine
TEST_PROCESSES ?= 2

.PHONY: demo test lint format install clean bench-cpu

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rmi demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-cpu: $(STAMP)
	$(BIN)/python benchmarks/loss_bench.py --device cpu

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
