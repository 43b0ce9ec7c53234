# The two README commands: `make run` (the main job) and `make test`. Both set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck bench clean browser report-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	# torch first and pinned: this version is the local CPU build (any other pulls a CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e . --group dev
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser test (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null)

# PDF reports: Pango for WeasyPrint; poppler-utils (pdftoppm, pdftotext) for the report test.
report-deps:
	@(command -v pdftoppm >/dev/null 2>&1 && ldconfig -p | grep -q libpangoft2) || (apt-get update -qq && apt-get install -y -qq poppler-utils libpango-1.0-0 libpangoft2-1.0-0 >/dev/null)

run: install report-deps
	$(BIN)/tocsin demo

test: install browser report-deps
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: install
	$(BIN)/python bench/storage.py

clean:
	rm -rf $(VENV) tocsin-data .pytest_cache .mypy_cache .ruff_cache test-artifacts
