# The two commands a user runs: `make demo` and `make test`. Both bootstrap what they need:
# system packages when run as root (.ci/bootstrap-system), then the virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test system lint typecheck pytest clean

system:
	@./.ci/bootstrap-system

$(BIN)/python: | system
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Real daemons in network namespaces (ffo-lab-*), torn down afterwards, also on Ctrl-C; without root or
# namespaces, `ffo lab demo` shows the simulated demo instead and says so in its first line.
demo: system $(STAMP)
	$(BIN)/ffo lab demo

lint: $(STAMP)
	$(BIN)/ruff check ffo tests tools
	$(BIN)/ruff format --check ffo tests tools

typecheck: $(STAMP)
	$(BIN)/mypy ffo

pytest: $(STAMP)
	$(BIN)/pytest -q

test: system lint typecheck pytest

clean:
	rm -rf $(VENV) build *.egg-info
