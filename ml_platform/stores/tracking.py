"""Recording a candidate in MLflow tracking: everything a reviewer needs to trust or reject it.

One MLflow run per candidate holds its parameters, metrics (candidate, baseline, champion on the same
test split), the snapshot as a dataset input with its digest, the code version, the Dagster run id,
package versions, the evaluation report, the fitted pipeline with its signature and an input example,
and (``log_figures``) the evidence figures: confusion matrix, per-segment F1 against the champion.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml_platform.keys import REGISTRY_TAG
from ml_platform.rules.features import SPLIT_COLUMN
from ml_platform.rules.spec import ModelSpec
from ml_platform.rules.training import CandidateReport
from ml_platform.stores.lineage import CodeVersion, package_versions
from ml_platform.stores.registry import Store

PIP_REQUIREMENTS_FROM = ("scikit-learn", "pandas", "numpy", "scipy", "skops")
SCHEMA_SAMPLE_ROWS = 1_000


@dataclass(frozen=True)
class LoggedCandidate:
    run_id: str
    model_uri: str
    experiment_id: str


def log_candidate(
    store: Store,
    spec: ModelSpec,
    pipeline,
    features: pd.DataFrame,
    report: CandidateReport,
    snapshot_id: str,
    snapshot_file: str,
    features_id: str,
    split_digest: str,
    code: CodeVersion,
    fingerprint: str,
    dagster_run_id: str,
) -> LoggedCandidate:
    import mlflow
    import mlflow.sklearn

    experiment_id = store.experiment_id(spec.name)
    versions = package_versions()
    tags = {
        f"{REGISTRY_TAG}model": spec.name,
        f"{REGISTRY_TAG}snapshot_id": snapshot_id,
        f"{REGISTRY_TAG}features_id": features_id,
        f"{REGISTRY_TAG}split_digest": split_digest,
        f"{REGISTRY_TAG}fingerprint": fingerprint,
        f"{REGISTRY_TAG}params_digest": spec.params_digest(),
        f"{REGISTRY_TAG}git_dirty": str(code.dirty).lower(),
        f"{REGISTRY_TAG}code_version_source": code.source,
        "mlflow.source.git.commit": code.commit,
        "dagster.run_id": dagster_run_id,
    }
    train = features[features[SPLIT_COLUMN] == "train"]
    test = features[features[SPLIT_COLUMN] == "test"]
    columns = [*spec.features, spec.label]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-{snapshot_id[:8]}", tags=tags) as run:
        mlflow.log_params(
            {
                **{f"param.{k}": v for k, v in spec.params.items()},
                "pipeline": spec.pipeline,
                "features": ",".join(spec.features),
                "label": spec.label,
                "split.test_fraction": spec.split.test_fraction,
                "split.seed": spec.split.seed,
                "split.stratified": spec.split.stratified,
                "train_rows": len(train),
                "test_rows": len(test),
            }
        )
        mlflow.log_metrics(_metrics(report))
        datasets, contexts = [], ["training", "evaluation"]
        for frame, context in zip((train, test), contexts, strict=True):
            dataset = mlflow.data.from_pandas(
                frame[columns],
                source=_local_file_source(snapshot_file),
                targets=spec.label,
                name=f"{spec.name}-{snapshot_id[:12]}-{context}",
                digest=snapshot_id[:36],
            )
            # MLflow infers a dataset's schema value by value in Python, about 2 µs a cell: 12 s of CPU
            # for 750,000 training rows here (docs/benchmarks.md). The frame passed its feature contract
            # (types fixed, no nulls), so its first rows have the schema of all of them; the cached
            # property is filled with that schema before ``log_input`` asks for it.
            dataset.__dict__["schema"] = _signature(frame[columns].head(SCHEMA_SAMPLE_ROWS)).inputs
            datasets.append(dataset)
        mlflow.log_inputs(datasets, contexts, [None, None])  # one store write for both, as log_params and log_metrics
        mlflow.log_dict(report.as_dict(), "evaluation/report.json")
        mlflow.log_dict(versions, "environment/packages.json")
        example = test[list(spec.features)].head(5)
        with _without_pip_version_notice():
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=_signature(example, pipeline.predict(example)),
                input_example=example,
                pip_requirements=[f"{p}=={versions.get(p) or _version(p)}" for p in PIP_REQUIREMENTS_FROM],
                skops_trusted_types=list(spec.skops_trusted_types) or None,
            )
    return LoggedCandidate(run.info.run_id, info.model_uri, experiment_id)


def _local_file_source(path: str):
    """The snapshot file as MLflow's local-file dataset source, named explicitly.

    Given a bare path, MLflow asks every registered source type whether it can read it, finds its own
    local-file type registered twice (for the schemes ``""`` and ``file``) and warns that the source
    "can be interpreted in multiple ways" before picking the second. Naming the type here records the
    same source (type ``local``, the file's path) without the guess.
    """
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    return get_dataset_source_from_json(json.dumps({"uri": path}), source_type="local")


def _signature(model_input: pd.DataFrame, model_output=None):
    """MLflow's signature of ``model_input`` (and ``model_output``), its integer columns kept as integers.

    MLflow hints, for every integer column it infers, that a missing value at inference time would
    break schema enforcement. These columns are the spec's features and label, which the
    ``has_no_nulls`` gate keeps free of nulls before any candidate is trained, so integer is what the
    contract says they are and the hint does not apply: exactly that warning is ignored, here only.
    """
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        return infer_signature(model_input, model_output)


class _PipVersionNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to resolve installed pip version")


@contextmanager
def _without_pip_version_notice() -> Iterator[None]:
    """Drop MLflow's "Failed to resolve installed pip version" warning while a model is logged.

    The platform's environment is installed by uv, which installs no pip, so MLflow cannot pin the pip
    line of the model's ``conda.yaml`` and writes it unpinned: harmless, since the model's own
    requirements are pinned explicitly (``PIP_REQUIREMENTS_FROM``). Only that message of that logger is
    dropped, and only for the call.
    """
    notice, logger = _PipVersionNotice(), logging.getLogger("mlflow.utils.environment")
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _metrics(report: CandidateReport) -> dict[str, float]:
    metrics = {}
    for prefix, evaluation in (("", report.candidate), ("baseline.", report.baseline), ("champion.", report.champion)):
        if evaluation is None:
            continue
        for name in ("accuracy", "f1_weighted", "f1_macro", "balanced_accuracy"):
            metrics[f"{prefix}{name}"] = evaluation.metric(name)
    metrics |= {f"f1_class.{c}": v for c, v in report.candidate.f1_per_class.items()}
    metrics |= {f"f1_segment.{s}": v for s, v in report.candidate.f1_per_segment.items()}
    return metrics


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


MLFLOW_UI_URL = "http://127.0.0.1:5000"


def log_figures(store: Store, run_id: str, figures: Mapping[str, bytes], folder: Path) -> list[Path]:
    """Keep the PNG figures in ``folder`` (beside the evidence) and log them to the run's ``evaluation/``.

    Returns:
        The files written, in the order given.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in figures.items():
        path = folder / name
        path.write_bytes(png)
        written.append(path)
    store.client().log_artifacts(run_id, str(folder), "evaluation")
    return written


def mlflow_ui_url() -> str:
    """Where a person reaches MLflow's UI on this store (``make mlflow-ui``); ``ML_PLATFORM_MLFLOW_UI_URL`` moves it."""
    return (os.environ.get("ML_PLATFORM_MLFLOW_UI_URL") or MLFLOW_UI_URL).rstrip("/")


def run_url(experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(model: str, version: str) -> str:
    return f"{mlflow_ui_url()}/#/models/{model}/versions/{version}"
