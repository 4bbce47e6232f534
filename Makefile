# cxloop: `make run` builds the whole platform on the embedded default; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.8
HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
TEST_WORKERS ?= 2

export CXLOOP_HOME := $(CURDIR)

.PHONY: venv browser scale-services run test test-faults test-scale bench ui bench-cdnow bench-ml bench-measure bench-erasure bench-voc clean-data help

help:
	@echo "make run    set up, simulate a shop if the landing dir is empty, materialize every asset, print a summary"
	@echo "make test   set up and run the whole test suite"
	@echo "make test-faults  the slowest fault-injection tests: kills, concurrent runs, outages, erasure rebuilds"
	@echo "make test-scale   the scale-out shape: dbt on Spark against DuckDB, Dagster and MLflow on Postgres"
	@echo "make browser  install Debian's chromium for the browser tests (only when /usr/bin/chromium is missing)"
	@echo "make bench  full build, next-day incremental run and a hand-written DuckDB floor at 1M and 10M events"
	@echo "make ui     Dagster UI (and MLflow UI) on $(HOST)"
	@echo "make bench-cdnow  run the platform on the CDNOW transactions and score it on the 39-week holdout"
	@echo "make bench-ml  run the platform on simulated shops and judge its models against the simulator's ceiling"
	@echo "make bench-measure  run the platform on the demo shop and judge anomalies and experiments against its truth"
	@echo "make bench-erasure  run the platform on the demo shop, erase 1 and then 25 people, time the suppression filter"
	@echo "make bench-voc      text models on the demo shop's texts: held-out accuracy next to VADER, texts per second"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# The browser tests drive Debian's chromium through playwright; `playwright install` is never used.
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	}
	@/usr/bin/chromium --version 2>/dev/null

# The scale-out tests start a throwaway Postgres server from Debian's packages and a local Spark session, which
# needs a Java runtime; both are installed here when missing.
scale-services:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v java >/dev/null; } || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql openjdk-17-jre-headless; \
	}
	@ls -d /usr/lib/postgresql/*/bin/initdb && java -version 2>&1 | head -1

run: $(STAMP)
	$(BIN)/cxloop run

# The suite runs on TEST_WORKERS pytest-xdist workers, a test module per worker (`--dist loadfile`) so each
# module's installation is built once; `TEST_WORKERS=0` runs it in one process.
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Separate processes killed by SIGKILL, runs launched together, a tracking server going down, erasure followed
# by a rebuild from landing: minutes each, so outside `make test`; CI runs both.
test-faults: $(STAMP)
	$(BIN)/python -m pytest -m faults tests/faults

test-scale: $(STAMP) scale-services
	$(BIN)/python -m pytest -m scale -n $(TEST_WORKERS) --dist loadfile tests/scale

# Full build, next-day incremental run and the hand-written DuckDB floor at 1M and 10M events; 100M on request:
# `make bench BENCH_EVENTS=100M`.
BENCH_EVENTS ?= 1M,10M
bench: $(STAMP)
	$(BIN)/python benchmarks/scale.py --events $(BENCH_EVENTS)

ui: $(STAMP)
	$(BIN)/cxloop ui --host $(HOST) --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT)

bench-cdnow: $(STAMP)
	$(BIN)/python benchmarks/cdnow.py

bench-ml: $(STAMP)
	$(BIN)/python benchmarks/ml_simulated.py

bench-measure: $(STAMP)
	$(BIN)/python benchmarks/measure_simulated.py

bench-erasure: $(STAMP)
	$(BIN)/python benchmarks/erasure.py

bench-voc: $(STAMP)
	$(BIN)/python benchmarks/voc.py

clean-data:
	rm -rf data
