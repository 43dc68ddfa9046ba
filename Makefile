# One entry point for set-up, the demo, tests and benchmarks. Everything runs in .venv,
# created and filled from the pyproject files on first use. Every folder under plugins/ is a
# backend package, and handlers/ the event handlers package (serve, worker): each installed,
# linted, type-checked and tested like the core, and also tested alone with the core in a venv
# of its own, so an undeclared dependency fails. The core is also tested alone, without any of
# them (core/tests).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(notdir $(wildcard plugins/*))
PIP := --quiet --disable-pip-version-check
PACKAGES := -e core[dev] -e handlers[test] -e tests/example-plugin \
	$(foreach p,$(PLUGINS),-e plugins/$(p)[test])

.PHONY: install demo test lint typecheck pytest isolated bench clean

$(STAMP): core/pyproject.toml handlers/pyproject.toml tests/example-plugin/pyproject.toml \
		$(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP) $(PACKAGES)
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default: `serve` on a local queue with the seed's handler, an
## EVENT published, the handler completing the waiting task in a Conductor API double.
demo: $(STAMP)
	$(BIN)/python examples/seed/walkthrough.py

# The plugin suites run JOBS at a time: each has its own venv and starts its own broker on a
# free port, so they share nothing; --output-sync keeps each suite's output in one piece.
JOBS ?= 2

test: lint typecheck pytest
	$(MAKE) --no-print-directory -j$(JOBS) --output-sync=target isolated

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Each plugin is checked on its own: their test folders would otherwise clash by module name.
typecheck: $(STAMP)
	$(BIN)/mypy
	@echo "mypy handlers"
	MYPYPATH=core/src:handlers/src:handlers $(BIN)/mypy handlers/src handlers/tests
	@echo "mypy core/tests"
	MYPYPATH=core/src $(BIN)/mypy core/tests
	@for p in $(PLUGINS); do \
	  echo "mypy plugins/$$p"; \
	  MYPYPATH=core/src:plugins/$$p/src:plugins/$$p/tests $(BIN)/mypy plugins/$$p/src plugins/$$p/tests || exit 1; \
	done

# The core's and cross-package tests. Each plugin's own tests, the handlers package's and the
# core-alone tests run once, in `isolated`.
pytest: $(STAMP)
	$(BIN)/pytest -q tests

# Each plugin alone with the core, in a fresh venv: only what its pyproject declares, so an
# undeclared dependency fails. This is where the plugins' tests run.
isolated: isolated-core isolated-handlers $(foreach p,$(PLUGINS),isolated-$(p))

# The core alone: no handlers package, no plugin; its commands work and the handlers' commands
# say what to install.
isolated-core: $(STAMP)
	rm -rf $(VENV)-core
	$(PYTHON) -m venv $(VENV)-core
	$(VENV)-core/bin/python -m pip install $(PIP) "./core[testing]" "pytest-asyncio>=0.24,<2"
	cd core && ../$(VENV)-core/bin/python -m pytest -q tests -p no:cacheprovider

isolated-handlers: $(STAMP)
	rm -rf $(VENV)-handlers
	$(PYTHON) -m venv $(VENV)-handlers
	$(VENV)-handlers/bin/python -m pip install $(PIP) ./core "./handlers[test]"
	cd handlers && ../$(VENV)-handlers/bin/python -m pytest -q tests -p no:cacheprovider

isolated-%: $(STAMP)
	rm -rf $(VENV)-$*
	$(PYTHON) -m venv $(VENV)-$*
	$(VENV)-$*/bin/python -m pip install $(PIP) ./core "./plugins/$*[test]"
	cd plugins/$* && ../../$(VENV)-$*/bin/python -m pytest -q tests -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(VENV)-*
