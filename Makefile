# Two entry points (see README): `make demo` and `make test`.
# Both build .venv from the hash-pinned lock file; nothing is installed unpinned.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.regate-installed

.PHONY: demo test lint bench-decision bench-gateway lock clean

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/regate demo

test: $(STAMP)
	scripts/test-components
	PATH="$$HOME/go/bin:$$PATH" $(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check engine adapters tests bench
	$(VENV)/bin/mypy

bench-decision: $(STAMP)
	$(VENV)/bin/python bench/decision.py

lock:
	uv pip compile pyproject.toml --extra opa --extra redis --python-version 3.11 --generate-hashes -o requirements/runtime.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.lock

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
