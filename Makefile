# hookstream: `make run` to try it, `make test` to check it. Both work on a fresh clone with
# Python 3.11, Java 17 and Maven; everything else is installed into .venv and ~/.cache/hookstream.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# Two workers, a module each at a time (module-scoped brokers start once), the longest modules first:
# most of a Kafka test is waiting on Kafka, so two share two cores well.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: install run test unit lint bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	scripts/run-local

test: lint
	scripts/with-kafka $(BIN)/pytest $(PARALLEL) $(PYTEST_ARGS)

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hookstream schemas --check

bench: $(INSTALLED)
	scripts/with-kafka $(BIN)/python -m bench --peers $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run
