# QRS developer and operator entry points. Everything installs into .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_STAMP := $(VENV)/.lint-installed

.PHONY: install run dev test lint format bench bench-mitigation screenshot soak fuzz clean

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start the server on QRS_HOST:QRS_PORT (127.0.0.1:8000) with gunicorn, data in ./data.
run: $(STAMP)
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## Development server with Flask's reloader off (runner threads live in this process).
dev: $(STAMP)
	$(BIN)/flask --app qrs run --host $${QRS_HOST:-127.0.0.1} --port $${QRS_PORT:-8000}

## Install what the tests need and run them (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(LINT_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[lint]'
	touch $(LINT_STAMP)

## ruff check, ruff format --check and mypy on qrs/ (settings: ruff.toml, setup.cfg [mypy]).
lint: $(LINT_STAMP)
	$(BIN)/ruff check qrs
	$(BIN)/ruff format --check qrs
	$(BIN)/mypy

## Apply ruff's safe fixes and its formatting to qrs/ (then `make lint` passes its ruff half).
format: $(LINT_STAMP)
	$(BIN)/ruff check --fix qrs
	$(BIN)/ruff format qrs

## Long soak: gunicorn under load while workers are SIGKILLed (SOAK_ARGS="--minutes 30").
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

## Long property-based fuzz run of every endpoint (QRS_FUZZ_EXAMPLES cases per property).
fuzz: $(STAMP)
	QRS_FUZZ_EXAMPLES=$${QRS_FUZZ_EXAMPLES:-3000} $(BIN)/python -m pytest tests/test_fuzz.py -s $(PYTEST_ARGS)

## Print the benchmark table (BENCH_ARGS=--quick for a shorter run). Not part of `make test`.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

## The error-mitigation table: legacy EstimatorV2 vs the client-side Estimator on QRS.
bench-mitigation: $(STAMP)
	$(BIN)/python benchmarks/mitigation.py $(BENCH_ARGS)

## Dashboard and API-docs screenshots in a real headless Chromium, saved to screenshots/.
screenshot: $(STAMP)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get install -y chromium || sudo apt-get install -y chromium)
	$(BIN)/python -m tests.browser screenshots

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
