# Quick start: `make demo` runs the example pipeline end to end, `make test` runs the tests.
# Both create .venv with python3 and install the project (editable) with what they need.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-test

.PHONY: test demo bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

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
	rm -rf $(VENV) .airflow data
