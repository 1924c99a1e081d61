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

.PHONY: setup run test test-quick test-stack lint dev serve ray-up serve-ray ray-down rollback mlflow-ui bench bench-quick clean-home stack-up stack-run stack-status stack-down stack-worker dashboard health backup restore

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	touch $@

setup: $(VENV)/.installed

## run: materialize every asset on the built-in sample with the embedded defaults: the pipeline job,
## the monitoring job for the latest day, then the summary (one process: efficientai_assets.launch)
run: setup
	$(PY) -m resources.supervise --command-recovers -- $(PY) -m efficientai_assets.launch

## test: every test on real components, the team stack's end-to-end tier included; that tier runs
## in a pytest process of its own, so the services it starts never share a process with the state
## (Ray clients, MLX, threads) that the hundreds of tests before it leave behind
test: setup
	$(VENV)/bin/pytest -m "not stack"
	$(VENV)/bin/pytest -m stack

## test-quick: every test but the team stack's end-to-end tier (no stack to start)
test-quick: setup
	$(VENV)/bin/pytest -m "not stack"

## test-stack: the team stack's end-to-end tests alone (PostgreSQL, RabbitMQ, MLflow server, S3 store)
test-stack: setup
	$(VENV)/bin/pytest -m stack

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy efficientai_assets resources sensors benchmarks tests
	$(DG) check defs

## dev: the Dagster UI (and daemon: schedules, sensors) on http://127.0.0.1:3000
dev: setup
	$(PY) -m resources.home > /dev/null
	$(PY) -m resources.recovery
	$(DG) dev --host 127.0.0.1 --port 3000

## serve: serve the current deployment (champion, plus a canary if one is set) on 127.0.0.1:3001
SERVE_PORT ?= 3001
serve: setup
	$(PY) -m efficientai_assets.defs.serving.serve_cli serve --port $(SERVE_PORT) --stop-with-parent

## ray-up: a local Ray head on 127.0.0.1 (RAY_PORT, RAY_CPUS); other machines join it (docs/serving.md)
RAY_PORT ?= 6379
RAY_CPUS ?= 2
RAY_STATE := $(EFFICIENTAI_HOME)/ray/head.json
ray-up: setup
	$(PY) -m resources.ray up --state $(RAY_STATE) --port $(RAY_PORT) --num-cpus $(RAY_CPUS)

## serve-ray: serve the Ray-backed deployment on the cluster (EFFICIENTAI_RAY_*), replicas under the gate
serve-ray: setup
	EFFICIENTAI_RAY_ADDRESS="$${EFFICIENTAI_RAY_ADDRESS:-127.0.0.1:$(RAY_PORT)}" \
	  $(PY) -m efficientai_assets.defs.serving.serve_cli serve-ray

## ray-down: stop the head started by ray-up (only its processes)
ray-down: setup
	$(PY) -m resources.ray down --state $(RAY_STATE)

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

## stack-up: the team stack on this machine's loopback (MLflow server with auth, S3 store, Dagster
## webserver + daemon on PostgreSQL, Celery workers on RabbitMQ); state in $EFFICIENTAI_HOME/stack
STACK := $(PY) -m resources.stack
stack-up: setup
	$(STACK) up

## stack-run: the same pipeline and monitoring day as `make run`, queued on the stack's webserver
stack-run: setup
	$(STACK) launch efficientai_pipeline
	$(STACK) launch monitoring_job --partition "$$($(STACK) exec -- $(PY) -m efficientai_assets.summary --latest-day)"
	$(STACK) exec -- $(PY) -m efficientai_assets.summary

stack-status: setup
	$(STACK) status

## stack-down: stop the stack and drop its databases, broker vhost and state (KEEP_DATA=1 keeps them)
stack-down: setup
	$(STACK) down $(if $(KEEP_DATA),--keep-data)

## stack-worker: one more Celery worker: make stack-worker NAME=gpu-box QUEUES=heavy,dagster
## (on another machine: set the variables of `python -m resources.stack env --secrets` first)
NAME ?= worker-extra
QUEUES ?= heavy
stack-worker: setup
	$(STACK) worker $(NAME) -q $(QUEUES) $(if $(WORKER_HOME),--home $(WORKER_HOME))

## dashboard: every project namespace of the home on http://127.0.0.1:8000 (read-only; DASHBOARD_PORT=)
DASHBOARD_PORT ?= 8000
dashboard: setup
	$(PY) -m efficientai_assets.dashboard --port $(DASHBOARD_PORT)

## health: one line per store and server of the home; exits non-zero when one is down
health: setup
	$(PY) -m efficientai_assets.operations.health

## backup: one archive of every store (consistent while runs go on) under BACKUP_DIR; path on the last line
BACKUP_DIR ?= backups
backup: setup
	$(PY) -m efficientai_assets.operations.backup --dir "$(BACKUP_DIR)"

## restore: make restore ARCHIVE=backups/....tar.gz — into an empty home only, then checked
restore: setup
	@test -n "$(ARCHIVE)" || (echo 'usage: make restore ARCHIVE=backups/efficientai-backup-....tar.gz'; exit 2)
	$(PY) -m efficientai_assets.operations.restore "$(ARCHIVE)"

clean-home:
	rm -rf "$(EFFICIENTAI_HOME)"
