# The two commands: `make run` serves IncidentFox, `make test` runs ruff, mypy and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench drain faults fuzz clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/incidentfox serve

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check incidentfox tests bench
	$(BIN)/ruff format --check incidentfox tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.routing
	$(BIN)/python -m bench.ack
	$(BIN)/python -m bench.worker
	$(BIN)/python -m bench.sandbox
	$(BIN)/python -m bench.tools

# Not part of `make test` (about 7 min, needs PostgreSQL and Redis): a bot and 2 worker processes drain
# 10,000 queued runs while one worker is SIGKILLed and restarted. Override with DRAIN_ARGS="--runs 1000".
DRAIN_ARGS ?=
drain: $(STAMP)
	$(BIN)/python -m bench.drain $(DRAIN_ARGS)

# Not part of `make test`: SIGKILL at each step of a run (SQLite and Postgres), Postgres restarted
# mid-run (a private cluster), a Slack 429 storm. Override with e.g. FAULTS_ARGS="--trials 10".
FAULTS_ARGS ?= --trials 100 --storm-seconds 300
faults: $(STAMP)
	$(BIN)/python -m bench.faults $(FAULTS_ARGS)

# Not part of `make test`: schemathesis on the config API, hypothesis on /slack/events and on each
# webhook route (PagerDuty, incident.io, GitHub), 10,000+ each.
fuzz: $(STAMP)
	$(BIN)/python -m bench.fuzz_config_api
	$(BIN)/python -m bench.fuzz_slack_events
	$(BIN)/python -m bench.fuzz_webhooks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
