# pia — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/default.toml

.PHONY: run demo test lint bench docs clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## the service, on configs/default.toml
	$(BIN)/pia run --config $(CONFIG)

demo: $(STAMP)  ## offline demo: simulated market, pipeline, console notifier
	$(BIN)/pia run --config configs/demo.toml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

bench: $(STAMP)  ## benchmarks -> benchmarks/reports/latest.json
	$(BIN)/python -m benchmarks.run

docs: $(STAMP)  ## regenerate docs/signals.md from the signal registry
	$(BIN)/python -m pia.signals.docs docs/signals.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
