"""The body of ``candidate_model``: load the feature frame, fit, score three contenders, record.

Kept apart from the factory because it is the one step that imports scikit-learn and MLflow; the
factory module is imported whenever the definitions load and must stay light.
"""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from ml_platform.errors import FigureRenderingFailed
from ml_platform.keys import REGISTRY_TAG
from ml_platform.rules import figures
from ml_platform.rules.spec import ModelSpec
from ml_platform.rules.training import CandidateReport, evaluate, fit_baseline, fit_candidate
from ml_platform.settings import PlatformPaths
from ml_platform.stores import lineage
from ml_platform.stores.figure_files import Rendering, render_in_background
from ml_platform.stores.registry import Store, current_champion, load_version
from ml_platform.stores.snapshot import load_snapshot
from ml_platform.stores.tracking import log_candidate, log_figures, run_url


def train_candidate(
    context, spec: ModelSpec, paths: PlatformPaths, store: Store, upstream: dict
) -> dg.MaterializeResult:
    features_id, snapshot_id = upstream["features_id"], upstream["snapshot_id"]
    stored, features = load_snapshot(paths.features(spec.name), features_id, run_id=context.run_id, release=True)
    context.log.info(f"fitting {spec.pipeline} on {upstream['train_rows']:,} training rows")
    pipeline = fit_candidate(features, spec)
    candidate = evaluate(pipeline, features, spec)
    dummy = fit_baseline(features, spec)
    baseline = evaluate(dummy, features, spec)

    champion = current_champion(store, spec.name)
    report = CandidateReport(candidate, baseline, baseline_strategy=dummy.strategy)
    if champion is not None:
        report = _compared_with_champion(context, spec, paths, store, champion, pipeline, features, report)

    code = lineage.code_version()
    code_identity = lineage.model_code_identity(spec)
    fingerprint = lineage.candidate_fingerprint(snapshot_id, code_identity, spec.params_digest())
    staging = paths.home / "evidence" / spec.name / f".rendering-{context.run_id}"
    with render_in_background(report.as_dict(), spec.name, spec.policy.min_segment_f1, staging) as rendering:
        logged = log_candidate(
            store,
            spec,
            pipeline,
            features,
            report,
            snapshot_id=snapshot_id,
            snapshot_file=str(stored.data_file),
            features_id=features_id,
            split_digest=upstream["split_digest"],
            code=code,
            fingerprint=fingerprint,
            dagster_run_id=context.run_id,
        )
        context.log.info(
            f"candidate logged as MLflow run {logged.run_id}: {spec.policy.comparison_metric}="
            f"{candidate.metric(spec.policy.comparison_metric):.4f}"
        )
        pngs = _rendered(context, rendering, spec, report)
    pictures = _evidence_figures(context, spec, paths, store, pngs, logged.run_id)
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": logged.run_id,
            "mlflow_run": dg.MetadataValue.url(run_url(logged.experiment_id, logged.run_id)),
            "model_uri": logged.model_uri,
            "fingerprint": fingerprint,
            "snapshot_id": snapshot_id,
            "features_id": features_id,
            "code_identity": code_identity,
            "git_commit": code.commit,
            "git_dirty": code.dirty,
            "params_digest": spec.params_digest(),
            "dagster_run_id": context.run_id,
            "champion_version": champion.version if champion else "",
            "evaluation": dg.MetadataValue.json(report.as_dict()),
            "metrics": dg.MetadataValue.md(_metrics_table(report, spec)),
            **pictures,
            **{name: candidate.metric(name) for name in ("accuracy", "f1_weighted", "f1_macro")},
        },
        data_version=dg.DataVersion(logged.run_id),
    )


def _compared_with_champion(
    context, spec: ModelSpec, paths: PlatformPaths, store: Store, champion, pipeline, features, report: CandidateReport
) -> CandidateReport:
    """``report`` with the champion re-scored on the candidate's test rows (less those it trained on),
    or with the reason it could not be."""
    context.log.info(
        f"re-scoring champion v{champion.version} on the candidate's {report.candidate.test_rows:,} test rows"
    )
    champion_model = load_version(store, spec.name, champion.version)
    fair = _fair_comparison_frame(context, spec, paths, champion, features)
    excluded = len(features) - len(fair)
    compared = replace(report, champion_version=champion.version, champion_rows_excluded=excluded)
    try:
        if (fair["split"] == "test").sum() == 0:
            raise ValueError("every test row was in the champion's training split: no fair comparison is possible")
        return replace(
            compared,
            champion=evaluate(champion_model, fair, spec),
            candidate_on_champion_rows=evaluate(pipeline, fair, spec) if excluded else None,
        )
    except (KeyError, ValueError, TypeError) as error:  # the champion cannot read this frame's columns
        return replace(compared, champion_error=f"{type(error).__name__}: {str(error)[:300]}")


def _rendered(context, rendering: Rendering, spec: ModelSpec, report: CandidateReport) -> dict[str, bytes]:
    """The background renderer's PNGs; if it failed, the same figures rendered here (a drawing error
    then surfaces in this step with its own traceback)."""
    try:
        return rendering.result()
    except FigureRenderingFailed as error:
        context.log.warning(f"{error}; rendering the evidence figures in this process instead")
    rendered = figures.report_figures(report, spec.name, spec.policy.min_segment_f1)
    return {name: figures.png_bytes(figure) for name, figure in rendered.items()}


def _evidence_figures(
    context, spec: ModelSpec, paths: PlatformPaths, store: Store, pngs: dict[str, bytes], run_id: str
) -> dict:
    """Keep the report's figures beside the evidence, log them to the MLflow run, and return them as
    Markdown images for the UI (plus the folder that holds the files)."""
    folder = paths.home / "evidence" / spec.name / run_id
    context.log.info(f"evidence figures kept in {folder} and logged to the MLflow run")
    log_figures(store, run_id, pngs, folder)
    metadata = {
        name.removesuffix(".png"): dg.MetadataValue.md(figures.markdown_image(png, name)) for name, png in pngs.items()
    }
    return metadata | {"figures": dg.MetadataValue.path(str(folder))}


def _metrics_table(report: CandidateReport, spec: ModelSpec) -> str:
    contenders = [
        ("candidate", report.candidate),
        (f"baseline DummyClassifier({report.baseline_strategy})", report.baseline),
    ]
    if report.champion:
        contenders.append((f"champion v{report.champion_version}", report.champion))
    metrics = ("accuracy", "f1_weighted", "f1_macro", "balanced_accuracy")
    table = "| model | " + " | ".join(metrics) + " |\n|---|" + "---|" * len(metrics) + "\n"
    table += "".join(
        f"| {name} | " + " | ".join(f"{e.metric(m):.4f}" for m in metrics) + " |\n" for name, e in contenders
    )
    if report.candidate.f1_per_segment:
        table += (
            "\n| segment | test rows | candidate F1 |"
            + (" champion F1 |" if report.champion else "")
            + "\n|---|---|---|"
        )
        table += "---|\n" if report.champion else "\n"
        for segment, f1 in report.candidate.f1_per_segment.items():
            row = f"| {segment} | {report.candidate.rows_per_segment.get(segment, 0):,} | {f1:.4f} |"
            if report.champion:
                row += f" {report.champion.f1_per_segment.get(segment, float('nan')):.4f} |"
            table += row + "\n"
    return table


def _fair_comparison_frame(context, spec: ModelSpec, paths: PlatformPaths, champion, features):
    """The candidate's frame without the test rows the champion trained on (see training module)."""
    from ml_platform.errors import ContractViolation
    from ml_platform.rules.training import without_champion_training_rows

    champion_features = champion.tags.get(f"{REGISTRY_TAG}features_id")
    if not spec.key_column or not champion_features:
        context.log.warning("no key column or no recorded champion features: comparing on the whole test split")
        return features
    try:
        _, trained_on = load_snapshot(paths.features(spec.name), champion_features)
    except ContractViolation as error:
        context.log.warning(f"the champion's feature frame is not readable here ({error}); whole test split used")
        return features
    keys = trained_on.loc[trained_on["split"] == "train", spec.key_column]
    fair = without_champion_training_rows(features, spec, keys)
    if len(fair) < len(features):
        context.log.info(f"left {len(features) - len(fair):,} test rows the champion trained on out of the comparison")
    return fair
