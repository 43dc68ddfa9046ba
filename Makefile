# One entry point for set-up, the demo, tests and benchmarks. Everything runs in .venv,
# created and filled from the pyproject files on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := -e core[dev] -e tests/example-plugin
DEMO_DB := $(VENV)/demo-queue.db

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): core/pyproject.toml tests/example-plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PACKAGES)
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default: publish the seed's EVENT to a local queue, read it back.
demo: $(STAMP)
	@rm -f $(DEMO_DB)*
	@echo "== EVENT task: publish to local:send_email_queue"
	CONDUCTOR_EVENTQUEUES_LOCAL_PATH=$(DEMO_DB) $(BIN)/conductor-events publish local:send_email_queue \
	  --input '{"myKey": "myValue", "myNumber": 100}' \
	  --workflow-type my-workflow-name --workflow-version 1
	@echo "== consumer: listen on local:send_email_queue"
	CONDUCTOR_EVENTQUEUES_LOCAL_PATH=$(DEMO_DB) $(BIN)/conductor-events listen local:send_email_queue \
	  --count 1 --timeout 10

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV)
