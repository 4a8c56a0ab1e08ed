# Two commands on a fresh machine: `make demo` and `make test` (and `make lint` before a commit).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-postgres test lint bench stress install clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	cd examples && ../$(BIN)/python quickstart.py
	@echo
	@echo "See it in the browser: $(BIN)/xt ui examples/quickstart.db --open"

# The quickstart against a throwaway local PostgreSQL (Debian package postgresql), stopped after.
demo-postgres: $(STAMP)
	cd examples && ../$(BIN)/python ../tests/pg_server.py ../$(BIN)/python quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff's lint and format check, then mypy (settings in pyproject.toml); all three run, and
# the target fails if any of them found something.
lint: $(STAMP)
	@status=0; \
	echo "ruff check xetrack tests"; $(BIN)/ruff check xetrack tests || status=1; \
	echo "ruff format --check xetrack tests"; $(BIN)/ruff format --check xetrack tests || status=1; \
	echo "mypy xetrack"; $(BIN)/mypy xetrack || status=1; \
	exit $$status

stress: $(STAMP)
	$(BIN)/python -m pytest -q -m stress

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench.py
	$(BIN)/python tests/benchmarks/bench_keys.py
	$(BIN)/python tests/benchmarks/bench_ui.py
	$(BIN)/python tests/benchmarks/bench_postgres.py
	$(BIN)/python tests/benchmarks/bench_lightning.py
	$(BIN)/python tests/benchmarks/bench_huggingface.py

# docs/images/ui-*.png: the dashboard on the example data, photographed with Chromium
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info
