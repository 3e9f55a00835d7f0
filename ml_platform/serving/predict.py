"""One served version's ``predict``: the pipeline's own answers, without pandas where that is exact (platform-owned).

Profiled on the conversion pipeline, one row (docs/benchmarks.md profile 15): of 9 ms in
``predict_proba``, the ``ColumnTransformer`` took 5.5 ms -- indexing pandas frames, checking feature
names, narwhals dispatch, per transformer -- and the boosted trees 2.4 ms. So for the preprocessing
the platform's pipelines use -- one fitted ``ColumnTransformer`` of ``OneHotEncoder`` (no ``drop``, no
infrequent categories, dense float64 output), ``"passthrough"`` and ``"drop"``, NumPy output -- the
matrix the final estimator receives is built here directly from the contract's typed columns, and the
final estimator is called on it. The estimator then sees the very values it would have seen (the
pipeline hands it the same float64 matrix), so the answers are the pipeline's own. Any other pipeline,
and any batch with a value this path does not type (not text in a category column, not a number in a
passed-through one), is scored by the pipeline itself.

That the two agree is also checked where it matters, on the traffic: a version's first
``CHECKED_BATCHES`` batches are scored both ways and answered from the pipeline; a single difference
turns the direct path off for that version, with an error in the server's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

LOGGER = logging.getLogger("ml_platform.serving")
CHECKED_BATCHES = 20


def predict(model, features) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and their probability from one ``predict_proba`` call (a classifier's ``predict`` is its argmax);
    a model without probabilities gives its ``predict`` and no confidence."""
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        probabilities = model.predict_proba(features)
        best = probabilities.argmax(axis=1)
        return np.asarray(model.classes_)[best], probabilities[np.arange(len(best)), best]
    return np.asarray(model.predict(features)), None


@dataclass(frozen=True)
class _Block:
    """One transformer's columns: one-hot (each column's category -> position) or passed through (``None``)."""

    columns: tuple[str, ...]
    categories: tuple[dict[str, int], ...] | None


class Preprocessing:
    """A fitted ``ColumnTransformer`` of the supported kind, applied to typed columns without pandas."""

    def __init__(self, blocks: Sequence[_Block]):
        self.blocks = tuple(blocks)
        self.columns = {name for block in blocks for name in block.columns}
        self.width = sum(
            len(block.columns) if block.categories is None else sum(map(len, block.categories)) for block in blocks
        )

    @classmethod
    def of(cls, pipeline) -> Preprocessing | None:
        """The pipeline's preprocessing, or ``None`` when it is not one this path reproduces exactly."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.utils._set_output import _get_output_config

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            return None
        prepare = pipeline.steps[0][1]
        if not isinstance(prepare, ColumnTransformer) or not hasattr(prepare, "transformers_"):
            return None
        if prepare.sparse_output_ or _get_output_config("transform", prepare)["dense"] != "default":
            return None
        if hasattr(pipeline.steps[-1][1], "feature_names_in_"):
            return None  # the estimator was fitted on a frame: it expects one
        blocks = [_block(transformer, columns) for _, transformer, columns in prepare.transformers_]
        if any(block is False for block in blocks):
            return None
        return cls([block for block in blocks if block is not None])

    def matrix(self, columns: Mapping[str, Any]) -> np.ndarray | None:
        """The float64 matrix the final estimator would receive, or ``None`` for a value this path does not type."""
        rows = len(next(iter(columns.values())))
        out = np.zeros((rows, self.width), dtype=np.float64)
        position = 0
        for block in self.blocks:
            if block.categories is None:
                for name in block.columns:
                    values = np.asarray(columns[name])
                    if values.dtype.kind not in "biuf":
                        return None
                    out[:, position] = values
                    position += 1
                continue
            for name, categories in zip(block.columns, block.categories, strict=True):
                for row, value in enumerate(np.asarray(columns[name], dtype=object)):
                    if type(value) is not str:
                        return None
                    found = categories.get(value)
                    if found is not None:  # an unknown category is all zeros (handle_unknown="ignore")
                        out[row, position + found] = 1.0
                position += len(categories)
        return out


def _block(transformer, columns) -> _Block | None | bool:
    """The transformer as a block; ``None`` for one that drops its columns, ``False`` for one not supported."""
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    if isinstance(transformer, str) and transformer == "drop":
        return None
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        return False
    if not columns:
        return None
    if isinstance(transformer, FunctionTransformer) and transformer.func is None and transformer.validate is False:
        return _Block(tuple(columns), None)  # what "passthrough" becomes once fitted
    if isinstance(transformer, OneHotEncoder):
        plain = transformer.drop is None and not transformer._infrequent_enabled and not transformer.sparse_output
        if not plain or transformer.handle_unknown != "ignore" or transformer.dtype not in (np.float64, float):
            return False
        categories = [list(found) for found in transformer.categories_]
        if not all(type(category) is str for found in categories for category in found):
            return False
        return _Block(tuple(columns), tuple({category: i for i, category in enumerate(found)} for found in categories))
    return False


class Scorer:
    """A version's ``predict`` over the contract's typed columns: directly once that has matched the pipeline."""

    def __init__(self, pipeline, features: Sequence[str], model: str, version: str):
        self.pipeline, self.features, self.model, self.version = pipeline, list(features), model, version
        self.preprocessing = Preprocessing.of(pipeline)
        if self.preprocessing is not None and not self.preprocessing.columns <= set(self.features):
            self.preprocessing = None  # fitted on columns the spec no longer names: the pipeline says what is wrong
        self.final = pipeline.steps[-1][1] if self.preprocessing is not None else None
        self.agreed = 0

    @property
    def direct(self) -> bool:
        """Whether batches are answered without the pipeline (its answers matched on ``CHECKED_BATCHES``)."""
        return self.preprocessing is not None and self.agreed >= CHECKED_BATCHES

    def __call__(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        matrix = self.preprocessing.matrix(columns) if self.preprocessing is not None else None
        if matrix is None:
            return predict(self.pipeline, self._frame(columns))
        answers = predict(self.final, matrix)
        if self.agreed >= CHECKED_BATCHES:
            return answers
        expected = predict(self.pipeline, self._frame(columns))
        if _same(answers, expected):
            self.agreed += 1
            if self.agreed == CHECKED_BATCHES:
                LOGGER.info("model %s v%s: answered directly from now on (matched the pipeline on %d batches)",
                            self.model, self.version, CHECKED_BATCHES)  # fmt: skip
        else:
            LOGGER.error("model %s v%s: the direct path differs from the pipeline's own answers; it is off for "
                         "this version", self.model, self.version)  # fmt: skip
            self.preprocessing = None
        return expected

    def _frame(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        return pd.DataFrame({name: columns[name] for name in self.features})


def _same(one: tuple[np.ndarray, np.ndarray | None], other: tuple[np.ndarray, np.ndarray | None]) -> bool:
    if (one[1] is None) != (other[1] is None):
        return False
    return np.array_equal(one[0], other[0]) and (one[1] is None or np.array_equal(one[1], other[1]))
