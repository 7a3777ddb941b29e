# Every command of the project. `make run` and `make test` do their own setup on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fuzz test-fast lint format typecheck bench-synthesis bench-isolation compose-check k8s-check services clean

# The virtualenv is rebuilt when a requirements file changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## Run the whole stack on the embedded defaults (SQLite, pulsar-lite, file cache) until Ctrl-C.
run: $(BIN)/.installed
	$(BIN)/python -m devstack

## Run every test: unit and integration (real Postgres, Redis, pulsar-lite, Prometheus).
test: $(BIN)/.installed
	bash scripts/ensure_services.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python deploy/kubernetes/check.py
	$(BIN)/pytest

## Only the schemathesis run against the live OpenAPI schema (also part of `make test`).
test-fuzz: $(BIN)/.installed
	$(BIN)/pytest -m fuzz -s

## Unit tests only (no services needed).
test-fast: $(BIN)/.installed
	$(BIN)/pytest -m "not integration"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(BIN)/.installed
	$(BIN)/mypy vits synthesis_agent gateway tts_project devstack

bench-synthesis: $(BIN)/.installed
	$(BIN)/python bench/synthesis.py

bench-isolation: $(BIN)/.installed
	$(BIN)/python bench/isolation.py

## Validate docker-compose.yml with throwaway secrets (it refuses to render without a .env).
compose-check:
	env_file=$$(mktemp) && $(PYTHON) scripts/make_env.py > $$env_file && \
	docker-compose --env-file $$env_file config --quiet; status=$$?; rm -f $$env_file; exit $$status

## Render the Kubernetes overlays (kubectl kustomize), validate every object offline against the
## Kubernetes schemas (kubernetes-validate), then the manifest tests (KEDA fields, env contract).
k8s-check: $(BIN)/.installed
	$(BIN)/python deploy/kubernetes/check.py
	$(BIN)/pytest tests/deploy -q

services:
	bash scripts/ensure_services.sh

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
