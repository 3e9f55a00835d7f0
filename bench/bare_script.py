"""The baseline: the plain script a data scientist would write instead of using the platform.

It does the same work as ``ml-platform run <model>`` minus the platform: read the landing files,
validate them with the team's pandera contract, split (stratified, same seed and fraction), fit the
team's pipeline with the spec's parameters, evaluate on the test rows, log the run and the model to
MLflow (signature, input example, explicit pip requirements: MLflow's fast path), register a version
and set the ``champion`` alias. No snapshot, no gates, no Dagster, no baseline or champion comparison.

    python bench/bare_script.py --home <folder with landing/<model>/, mlflow.db> --model conversion
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--model", default="conversion")
    args = parser.parse_args(argv)

    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    from ml_platform.discovery import get_spec

    spec = get_spec(args.model)
    contract = _resolve(spec.contract)
    build_pipeline = _resolve(spec.pipeline)

    files = sorted((args.home / "landing" / args.model).glob("*.csv"))
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if len(files) > 1 else pd.read_csv(files[0])
    frame = contract.validate(frame, lazy=True)

    train, test = train_test_split(
        frame, test_size=spec.split.test_fraction, random_state=spec.split.seed, stratify=frame[spec.label]
    )
    features = list(spec.features)
    pipeline = build_pipeline(dict(spec.params)).fit(train[features], train[spec.label])
    predicted = pipeline.predict(test[features])
    metrics = {
        "accuracy": accuracy_score(test[spec.label], predicted),
        "f1_macro": f1_score(test[spec.label], predicted, average="macro"),
        "f1_weighted": f1_score(test[spec.label], predicted, average="weighted"),
    }

    uri = f"sqlite:///{(args.home / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = f"bare/{args.model}"
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(args.home / "mlartifacts" / "bare").resolve().as_uri())
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_params(spec.params)
        mlflow.log_metrics(metrics)
        example = test[features].head(5)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example,
            pip_requirements=[f"{p}=={_version(p)}" for p in ("scikit-learn", "pandas", "numpy", "scipy", "skops")],
            skops_trusted_types=list(spec.skops_trusted_types) or None,
        )
    client = mlflow.MlflowClient()
    version = mlflow.register_model(info.model_uri, f"bare-{args.model}")
    client.set_registered_model_alias(f"bare-{args.model}", "champion", version.version)
    print(f"bare {args.model}: {len(frame):,} rows, run {run.info.run_id}, version {version.version}, {metrics}")
    return 0


def _resolve(ref: str):
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


if __name__ == "__main__":
    sys.exit(main())
