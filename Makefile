# Octet: `make run` sets up .venv and runs the job, then opens the app; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel on this disk; set TORCH_SPEC="torch" (or an index URL's build) for another one.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run app test test-fast system-deps bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e .
	touch $@

# The tests drive the Ray engine on a local Ray too: the cluster extra comes with them.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,cluster]"
	touch $@

run: $(STAMP)
	$(BIN)/octet run --or-demo; status=$$?; \
	if [ $$status -ne 0 ] && [ $$status -ne 3 ]; then exit $$status; fi
	$(BIN)/octet app --or-demo

system-deps:
	@bash .ci/system-deps

# Test files run side by side in TEST_WORKERS processes (pytest-xdist; a file's tests stay
# together in one process, in order). TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= 2

# Everything, the soak and kill tests included.
test: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The edit loop: leaves out the tests marked slow (soak, kills, concurrency, Ray).
test-fast: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

# ruff over the whole tree, and the floors of the house (import-linter contracts in pyproject.toml).
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
