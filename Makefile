# The commands a user types. Each one creates the environment from uv.lock first (bootstrapping uv).
UV := ./tools/uv
RUN := $(UV) run --frozen

.PHONY: env demo test dev mlflow-ui lint validate clean

env:
	@$(UV) sync --frozen --quiet

demo: env  ## demo data for both models, a gated run of each, and a summary
	$(RUN) ml-platform demo

test: env  ## the whole test suite
	$(RUN) pytest

dev: env  ## the Dagster UI on workspace.yaml, on .ml_platform/
	$(RUN) ml-platform dev

mlflow-ui: env  ## MLflow's UI on the same store
	$(RUN) ml-platform mlflow-ui

lint: env
	$(RUN) ruff check ml_platform ml_platform_tests

validate: env  ## the definitions load
	$(RUN) dagster definitions validate -m ml_platform.definitions

clean:  ## delete the embedded platform home (snapshots, MLflow store, Dagster runs)
	rm -rf .ml_platform
