# Quick start: `make demo` runs the example pipeline end to end, `make test` runs the tests.
# Both create .venv with python3 and install the project (editable) with what they need.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-test

# The oldest supported Airflow (see README, "Compatibility"), on the oldest supported Python
# when this machine has it (pyenv's 3.10), with the dependency pins of its time.
OLDEST_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) $(PYTHON))
OLDEST_VENV := .venv-oldest
OLDEST_CONSTRAINTS := .ci/constraints-oldest.txt
OLDEST_STAMP := $(OLDEST_VENV)/.installed-test
# What `make test-oldest` runs: provider discovery and the connection CLI, every module and
# example DAG on that Airflow, an end-to-end dag.test() of the example DAG, the hook and the
# dataset operator suites. Not yet: the analytics operator and hook tests (they use partitioned
# timetables and Airflow 3.1's secrets masker) and the lineage/metrics runs (their harness uses the
# OpenLineage provider and Airflow 3.2+ task-runtime APIs; they run on the newest Airflow).
OLDEST_TESTS := tests/test_provider.py tests/test_compat.py tests/dags tests/hooks tests/operators \
	--ignore=tests/operators/analytics --ignore=tests/hooks/test_hook_analytics.py \
	--ignore=tests/operators/test_observability.py

.PHONY: test test-oldest lint typecheck demo bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e ".[test]"
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml $(OLDEST_CONSTRAINTS)
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet --progress-bar off --constraint $(OLDEST_CONSTRAINTS) \
		-e . pytest pytest-mock pyarrow
	touch $(OLDEST_STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

test-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -c "import sys, airflow; print('Airflow', airflow.__version__, 'on Python', sys.version.split()[0])"
	$(OLDEST_VENV)/bin/python -m pytest $(OLDEST_TESTS)

# Lint and format check (ruff) and the import contracts between the layers (import-linter).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/python scripts/demo.py

$(VENV)/.installed-bench: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e ".[test,bench]"
	touch $(VENV)/.installed-bench

bench: $(VENV)/.installed-bench
	$(VENV)/bin/python benchmarks/hook_speed.py

# What CI prints after the tests: the same figures with few rounds; it never fails on time.
bench-quick: $(VENV)/.installed-bench
	$(VENV)/bin/python benchmarks/hook_speed.py --quick

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .airflow data
