"""Classification metrics from confusion counts: the ones the model gates and the live monitor judge.

The definitions are scikit-learn's (``accuracy_score``, ``balanced_accuracy_score``, ``f1_score`` with
``zero_division=0``, macro and weighted, labels left to the data); the unit tests hold them equal.
They are computed from counts because the platform needs them many times over the same predictions
(per segment, per baseline strategy, per bootstrap resample, per window), and each scikit-learn call
re-validates and re-encodes every label: 55 calls took 4.2 s of a 1,000,000-row run
(docs/benchmarks.md), where one ``np.bincount`` takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

METRICS = ("accuracy", "f1_weighted", "f1_macro", "balanced_accuracy")


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Counts of true (rows) against predicted (columns) classes, in ``classes`` order.

    Raises:
        ValueError: a true or predicted value is not one of ``classes`` (names the strangers).
    """
    import pandas as pd

    index = pd.Index([str(c) for c in classes])
    k = len(classes)
    t = index.get_indexer(pd.Series(truth).astype(str))
    p = index.get_indexer(pd.Series(predicted).astype(str))
    if (t < 0).any() or (p < 0).any():
        values = np.concatenate([np.asarray(truth)[t < 0], np.asarray(predicted)[p < 0]])
        strangers = sorted({str(v) for v in values})[:10]
        raise ValueError(f"values outside the classes {list(classes)}: {strangers}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def metric_from_confusion(confusion: np.ndarray, metric: str) -> np.ndarray:
    """A metric from confusion matrices of shape ``(..., k, k)``, one value per leading index.

    Classes that occur neither in the truth nor in the predictions do not count, as in scikit-learn
    when its ``labels`` are left to the data.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    c = np.asarray(confusion, dtype=float)
    diagonal = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)  # true rows per class
    total = support.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return np.where(total > 0, diagonal.sum(axis=-1) / total, np.nan)
        if metric == "balanced_accuracy":
            recall = np.where(support > 0, diagonal / support, 0.0)
            present = (support > 0).sum(axis=-1)
            return np.where(present > 0, recall.sum(axis=-1) / present, np.nan)
        f1 = f1_per_class(c)
        if metric == "f1_weighted":
            return np.where(total > 0, (f1 * support).sum(axis=-1) / total, np.nan)
        present = ((support + c.sum(axis=-2)) > 0).sum(axis=-1)
        return np.where(present > 0, f1.sum(axis=-1) / present, np.nan)


def f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class, 2tp / (2tp + fp + fn), 0 where that is 0/0 (``zero_division=0``)."""
    c = np.asarray(confusion, dtype=float)
    diagonal = np.diagonal(c, axis1=-2, axis2=-1)
    both = c.sum(axis=-1) + c.sum(axis=-2)  # 2tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both > 0, 2 * diagonal / both, 0.0)
