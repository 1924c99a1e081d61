# efficientai — the README's commands. Only Python 3.11+ is needed: the first target that needs the
# environment installs uv into .tools/ and the locked dependencies into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
DG := $(VENV)/bin/dg

EFFICIENTAI_HOME ?= $(CURDIR)/.efficientai
export EFFICIENTAI_HOME
export DAGSTER_HOME := $(EFFICIENTAI_HOME)/dagster
export BENTOML_HOME := $(EFFICIENTAI_HOME)/bentoml
export MLFLOW_HTTP_REQUEST_MAX_RETRIES ?= 2
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION := false
export DVC_NO_ANALYTICS := 1
export DAGSTER_DISABLE_TELEMETRY := 1
# dg runs the project in its own .venv; say so, as an activated environment would.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)

.PHONY: setup run test lint dev serve rollback mlflow-ui bench bench-quick clean-home

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	touch $@

setup: $(VENV)/.installed

## run: materialize every asset on the built-in sample with the embedded defaults
run: setup
	$(PY) -m resources.home > /dev/null
	$(DG) launch --job efficientai_pipeline
	$(DG) launch --job monitoring_job --partition "$$($(PY) -m efficientai_assets.summary --latest-day)"
	$(PY) -m efficientai_assets.summary

## test: the whole test suite on real components
test: setup
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy efficientai_assets resources sensors benchmarks tests
	$(DG) check defs

## dev: the Dagster UI (and daemon: schedules, sensors) on http://127.0.0.1:3000
dev: setup
	$(PY) -m resources.home > /dev/null
	$(DG) dev --host 127.0.0.1 --port 3000

## serve: serve the current deployment (champion, plus a canary if one is set) on 127.0.0.1:3001
SERVE_PORT ?= 3001
serve: setup
	$(PY) -m resources.bentoml.store serve --port $(SERVE_PORT)

## rollback: put the previous champion back in one command: make rollback REASON="why"
rollback: setup
	@test -n "$(REASON)" || (echo 'usage: make rollback REASON="why"'; exit 2)
	$(DG) launch --assets deployment \
		--config-json '{"ops": {"deployment": {"config": {"action": "rollback", "reason": "$(REASON)"}}}}'

## bench: every benchmark at full size (results in benchmarks/results/latest.{json,md});
## BENCH_TORCH=1 also installs the CPU build of torch for the training comparison
bench: setup
	$(if $(BENCH_TORCH),$(UV) pip install --python $(PY) "torch==2.13.0")
	$(PY) -m benchmarks

## bench-quick: small sizes, a few minutes (results in benchmarks/results/quick.{json,md})
bench-quick: setup
	$(PY) -m benchmarks --quick

## mlflow-ui: the MLflow UI of the embedded store on http://127.0.0.1:5000
mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$(EFFICIENTAI_HOME)/mlflow/mlflow.db" \
		--default-artifact-root "$(EFFICIENTAI_HOME)/mlflow/artifacts" --host 127.0.0.1 --port 5000

clean-home:
	rm -rf "$(EFFICIENTAI_HOME)"
