# selfmend: `make demo` runs the loop on a fresh machine; `make test` runs lint and every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit integration bench worker flower clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/selfmend demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test: lint $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.samples_insert

worker: $(STAMP)
	$(BIN)/celery -A workers worker -B -l info

# Flower shows every task's arguments and can revoke tasks and stop workers: loopback only, and
# never without a password (reach it from elsewhere through an SSH tunnel or a proxy with TLS).
flower: $(STAMP)
	@test -n "$$FLOWER_BASIC_AUTH" || { echo "make flower: set FLOWER_BASIC_AUTH=user:password first" >&2; exit 2; }
	@$(BIN)/celery -A workers flower --address=127.0.0.1 --port=5555 --basic-auth="$$FLOWER_BASIC_AUTH"

clean:
	rm -rf $(VENV) .selfmend .pytest_cache .ruff_cache
