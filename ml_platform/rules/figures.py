"""Evidence as pictures: the figures a reviewer looks at before trusting a candidate (platform-owned).

Pure functions from plain numbers (and, for drift, the two frames compared) to matplotlib figures,
and from figures to PNG bytes. They draw on ``matplotlib.figure.Figure`` with the Agg canvas, never
through ``pyplot``: no global figure registry to leak into, no GUI backend to pick, safe in any
thread. matplotlib is imported inside the functions, so importing this module costs nothing (loading
the Dagster definitions must stay light).

The same PNG bytes are written beside the evidence, logged to MLflow and embedded in the Dagster
UI's Markdown metadata (the UI renders ``data:image/png;base64`` images, dagster#13443).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ml_platform.rules.drift import DriftReport
    from ml_platform.rules.training import CandidateReport

DPI = 100
CANDIDATE_COLOR = "#1f77b4"
CHAMPION_COLOR = "#aaaaaa"
BELOW_FLOOR_COLOR = "#d62728"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, each cell labelled with its count.

    Raises:
        ValueError: if the matrix is not square or does not have one row per class.
    """
    import numpy as np

    matrix = np.asarray(confusion, dtype=int)
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)):
        raise ValueError(
            f"confusion matrix of shape {matrix.shape} does not match {len(classes)} classes {list(classes)[:5]}: "
            "expected one row and one column per class"
        )
    figure = _figure(4.2, 3.6)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues", vmin=0)
    ticks = range(len(classes))
    axes.set_xticks(ticks, [str(c) for c in classes])
    axes.set_yticks(ticks, [str(c) for c in classes])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, f"{count:,}", ha="center", va="center", color="white" if count > threshold else "black")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def segment_f1_figure(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    minimum: float | None,
    title: str,
) -> Figure:
    """Per-segment F1 of the candidate beside the champion's, with the policy's floor as a line.

    Candidate bars below the floor are drawn red, so a failed ``meets_segment_minimums`` shows at a
    glance which segment failed it. A segment the champion was not scored on has no grey bar.

    Raises:
        ValueError: if there is no segment to draw.
    """
    import numpy as np

    if not candidate:
        raise ValueError("segment F1 figure: the candidate has no per-segment F1 (does the spec declare segments?)")
    segments = sorted(candidate)
    positions = np.arange(len(segments))
    width = 0.38 if champion else 0.6
    figure = _figure(max(4.0, 1.0 + 0.9 * len(segments)), 3.4)
    axes = figure.add_subplot()
    colors = [
        BELOW_FLOOR_COLOR if minimum is not None and candidate[s] < minimum else CANDIDATE_COLOR for s in segments
    ]
    offset = width / 2 if champion else 0.0
    bars = axes.bar(positions - offset, [candidate[s] for s in segments], width, color=colors, label="candidate")
    axes.bar_label(bars, fmt="%.2f", fontsize=8)
    if champion:
        values = [champion.get(s, math.nan) for s in segments]
        bars = axes.bar(positions + offset, values, width, color=CHAMPION_COLOR, label="champion")
        axes.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.2f}" for v in values], fontsize=8)
    if minimum is not None:
        axes.axhline(minimum, color=BELOW_FLOOR_COLOR, linestyle="--", linewidth=1, label=f"floor {minimum:.2f}")
    axes.set_xticks(positions, segments, rotation=20 if len(segments) > 4 else 0)
    axes.set_ylim(0, 1.25)
    axes.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.set_ylabel("F1 (weighted) on test rows")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper left", ncols=3, fontsize=8, frameon=False)
    figure.tight_layout()
    return figure


def report_figures(report: CandidateReport, model: str, min_segment_f1: float | None) -> dict[str, Figure]:
    """The figures of a candidate report, by file name: its confusion matrix and, with segments, its
    per-segment F1 against the champion's."""
    return report_dict_figures(report.as_dict(), model, min_segment_f1)


def report_dict_figures(report: Mapping, model: str, min_segment_f1: float | None) -> dict[str, Figure]:
    """``report_figures`` from ``CandidateReport.as_dict()``: plain numbers, so a process that has
    neither pandas nor the report's classes imported (a background renderer) can draw them."""
    candidate, champion = report["candidate"], report.get("champion")
    figures = {
        "confusion_matrix.png": confusion_matrix_figure(
            candidate["confusion"], candidate["classes"], f"{model} candidate on {candidate['test_rows']:,} test rows"
        )
    }
    if candidate["f1_per_segment"]:
        versus = f" vs champion v{report.get('champion_version')}" if champion else " (no champion yet)"
        figures["segment_f1.png"] = segment_f1_figure(
            candidate["f1_per_segment"],
            champion["f1_per_segment"] if champion else None,
            min_segment_f1,
            f"{model}: F1 per segment, candidate{versus}",
        )
    return figures


def drift_histograms_figure(
    reference: pd.DataFrame, batch: pd.DataFrame, report: DriftReport, title: str, columns: int = 3
) -> Figure:
    """One panel per monitored feature of a drift report: the reference's distribution against the batch's.

    Numeric features are histograms (shares of rows) on common bins; categorical ones are bars of each
    category's share. A panel's title gives the feature's PSI against its threshold, in red when the
    feature drifted.

    Raises:
        ValueError: if the report monitors no feature, or a feature is missing from either frame.
    """
    import numpy as np

    if not report.features:
        raise ValueError("drift histograms: the report monitors no feature")
    names = [drift.feature for drift in report.features]
    missing = [
        f"{name} ({which})"
        for which, frame in (("reference", reference), ("batch", batch))
        for name in names
        if name not in frame.columns
    ]
    if missing:
        raise ValueError(f"drift histograms: monitored feature(s) missing from the frames: {missing[:5]}")
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    figure = _figure(3.2 * columns, 2.5 * rows + 0.4)
    for index, drift in enumerate(report.features):
        axes = figure.add_subplot(rows, columns, index + 1)
        old, new = reference[drift.feature].dropna(), batch[drift.feature].dropna()
        if drift.kind == "numeric":
            values = np.concatenate([old.to_numpy(dtype=float), new.to_numpy(dtype=float)])
            bins = np.histogram_bin_edges(values, bins=20) if values.size else 10
            for data, color, label in ((old, CHAMPION_COLOR, "reference"), (new, CANDIDATE_COLOR, "batch")):
                weights = np.full(len(data), 1 / len(data)) if len(data) else None
                axes.hist(data.to_numpy(dtype=float), bins=bins, weights=weights, color=color, alpha=0.6, label=label)
        else:
            old_shares = old.astype(str).value_counts(normalize=True)
            new_shares = new.astype(str).value_counts(normalize=True)
            categories = sorted(set(old_shares.index) | set(new_shares.index))
            positions = np.arange(len(categories))
            axes.bar(
                positions - 0.2,
                old_shares.reindex(categories, fill_value=0),
                0.4,
                color=CHAMPION_COLOR,
                label="reference",
            )
            axes.bar(
                positions + 0.2, new_shares.reindex(categories, fill_value=0), 0.4, color=CANDIDATE_COLOR, label="batch"
            )
            axes.set_xticks(positions, categories, rotation=30 if len(categories) > 3 else 0, fontsize=7)
        axes.set_title(
            f"{drift.feature}: PSI {drift.psi:.3f} / {drift.threshold:g}",
            fontsize=9,
            color=BELOW_FLOOR_COLOR if drift.drifted else "black",
        )
        axes.tick_params(labelsize=7)
        if index == 0:
            axes.legend(fontsize=7, frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that shows the PNG inline, as a ``data:`` URI (what the Dagster UI's Markdown renders)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"markdown image {alt!r}: the bytes are not a PNG (they start with {png[:8]!r})")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
