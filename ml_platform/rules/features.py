"""The feature frame: the contract-typed snapshot plus a deterministic, recorded train/test split.

Feature *transformations* are not applied here: they are steps of the team's scikit-learn pipeline,
fitted on the training part only inside ``training.fit_candidate`` and logged with the model, so
serving applies exactly what training applied. This module only types the data (through the raw
contract's coercion) and decides, reproducibly, which rows are for training and which for testing.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ml_platform.errors import ContractViolation
from ml_platform.rules.spec import ModelSpec

SPLIT_COLUMN = "split"


def typed_frame(frame: pd.DataFrame, spec: ModelSpec, contract) -> pd.DataFrame:
    """Coerce and validate a snapshot with the raw contract; refuse it if the contract fails.

    The snapshot's own gates normally stop a bad snapshot first. This second look is what makes the
    gate hold when someone materializes ``validated_features`` by itself in a later run. Event times
    are parsed by the platform's fast path first (see ``contracts.event_time``), not by the coercion.
    """
    from pandera.errors import SchemaErrors

    from ml_platform.rules.contracts import validate, with_typed_event_times

    frame = with_typed_event_times(frame, spec, contract)
    try:
        return validate(frame, contract)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        first = cases.head(3)[["column", "check", "failure_case"]].astype(str).to_dict("records")
        raise ContractViolation(
            f"validated_features {spec.name!r}: the snapshot breaks {contract.__name__} in {len(cases):,} place(s), "
            f"e.g. {first}. Fix the landing data; the snapshot gates list every failure."
        ) from errors


def assign_split(frame: pd.DataFrame, spec: ModelSpec) -> pd.Series:
    """'train' or 'test' for each row, a pure function of the rows, the label and the spec's split.

    Stratified by label when asked (each class keeps its share in the test part), seeded, and
    independent of anything but its inputs, so re-running on the same snapshot gives the same split.
    """
    from sklearn.model_selection import train_test_split

    stratify = frame[spec.label] if spec.split.stratified else None
    positions = np.arange(len(frame))
    try:
        _, test = train_test_split(
            positions, test_size=spec.split.test_fraction, random_state=spec.split.seed, stratify=stratify
        )
    except ValueError as error:
        raise ContractViolation(
            f"validated_features {spec.name!r}: cannot split {len(frame):,} rows with test_fraction "
            f"{spec.split.test_fraction} stratified by {spec.label!r}: {error}"
        ) from error
    labels = np.full(len(frame), "train", dtype=object)
    labels[test] = "test"
    return pd.Series(labels, index=frame.index, name=SPLIT_COLUMN, dtype="str")


def build_feature_frame(frame: pd.DataFrame, spec: ModelSpec, contract) -> pd.DataFrame:
    return with_split(typed_frame(frame, spec, contract), spec)


def with_split(typed: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The feature frame from a snapshot already typed by its raw contract (``typed_frame``)."""
    if SPLIT_COLUMN in typed.columns:
        raise ContractViolation(f"validated_features {spec.name!r}: the data already has a column {SPLIT_COLUMN!r}")
    return typed.assign(**{SPLIT_COLUMN: assign_split(typed, spec)}).reset_index(drop=True)


def split_digest(split: pd.Series) -> str:
    """A hash of which rows are in the test part: the split's identity, recorded as evidence."""
    return hashlib.sha256(np.flatnonzero(split.to_numpy() == "test").astype(np.int64).tobytes()).hexdigest()
