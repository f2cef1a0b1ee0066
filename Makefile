# Two commands set up a fresh machine: `make demo` runs the main job, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	cd bench && for b in serialize client export_stages gzip_levels run; do ../$(BIN)/python $$b.py || exit 1; done
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/caller_tail.py
	$(BIN)/python bench/spool_kill.py
	$(BIN)/python bench/spans.py

generate: $(STAMP)
	$(BIN)/python tools/generate_models.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
