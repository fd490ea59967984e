# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   creates .venv if absent, installs flowae with the pinned constraints, runs the pipeline
#   make test   same install plus dev tools and the stack's clients/servers (extra `stack`), then the test suite
# Both are idempotent: the venv is reused and reinstalled only when pyproject.toml or constraints change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install install-dev lint bench-quality bench-speed bench-scoring bench-entities bench-ingest screenshots mlflow-ui prefect-ui clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,stack]"
	@# headless Chromium for the MLflow UI browser tests and `make screenshots` (Debian's package)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q chromium))
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/flowae demo

test: install-dev
	$(BIN)/ruff check --no-cache components flows tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check --no-cache components flows tests benchmarks

# Benchmarks (results with machine, command and date go to docs/BENCHMARKS.md)
bench-quality: install-dev
	$(BIN)/python benchmarks/quality.py --levers --write-docs

bench-speed: install-dev
	$(BIN)/python benchmarks/speed.py --write-docs

bench-scoring: install-dev
	$(BIN)/python benchmarks/scoring.py --write-docs

bench-entities: install-dev
	$(BIN)/python benchmarks/entities.py --synthetic-rows 6000 --write-docs

bench-ingest: install-dev
	$(BIN)/python benchmarks/ingest_memory.py --gb 1.0 --write-docs

screenshots: install-dev
	$(BIN)/python docs/make_screenshots.py

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root ./mlflow/artifacts --host 127.0.0.1 --port 5000

prefect-ui: install
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

clean:
	rm -rf data/demo mlflow/mlflow.db mlflow/artifacts .pytest_cache
