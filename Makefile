# crossmargin: `make run` shows the main job, `make test` runs the whole suite, `make bench` measures.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# where `make run` listens: `make run PORT=8080 HOST=0.0.0.0` (command-line values override these;
# a PORT or HOST in the environment does not, so a shell's own HOST never changes the address)
HOST := 127.0.0.1
PORT := 8000
# which benchmarks `make bench` runs: all by default; `make bench BENCH=service` (or "ledger engine")
BENCH :=

.PHONY: run test lint typecheck layers pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/crossmargin serve --demo --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck layers pytest

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The engine against its reference model for many more random streams (tests/model); prints
# how often each rare money path (bankruptcy, takeover, ADL, bad debt...) was reached.
.PHONY: fuzz
fuzz: $(STAMP)
	CROSSMARGIN_FUZZ_EXAMPLES=$${CROSSMARGIN_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -s -p no:cacheprovider tests/model/test_engine_model.py -k fuzz_profile
