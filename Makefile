# RefactorBot: `make run` starts the fleet, `make test` runs every test.
# Both install what is needed first (uv, then the locked dependencies into .venv).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test test-fast dashboard bench bench-compare lint fmt clean

$(VENV)/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || { echo "installing uv with pip"; \
	  $(PYTHON) -m pip install --quiet uv || $(PYTHON) -m pip install --quiet --user uv; }
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.installed

run: install  ## start the whole fleet; Ctrl-C stops it
	$(BIN)/refactorbot up

test: install  ## every test: unit, integration (real processes)
	$(BIN)/pytest

test-fast: install  ## unit tests only: no server, no service process is started
	$(BIN)/pytest -m unit

dashboard: install  ## only the dashboard (the fleet runner starts it too)
	$(BIN)/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port 8501 \
	  --server.headless true --browser.gatherUsageStats false

bench: install  ## benchmarks, printed as tables and saved as JSON in data/bench/
	$(BIN)/python -m benchmarks $(ONLY)

bench-compare: install  ## OLD=... NEW=...: flag figures more than 20% worse
	$(BIN)/python -m benchmarks.results compare $(OLD) $(NEW)

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy services master_core openrouter_gateway refactorbot dashboard

fmt: install
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
