# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-postgres test bench stress install clean screenshots

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

stress: $(STAMP)
	$(BIN)/python -m pytest -q -m stress

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench.py
	$(BIN)/python tests/benchmarks/bench_postgres.py

# docs/images/ui-*.png: the dashboard on the example data, photographed with Chromium
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info
