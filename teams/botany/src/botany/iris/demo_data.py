"""Demo landing data for iris: the bundled data set, or a seeded jittered resample of it."""

import numpy as np
import pandas as pd

MEASUREMENTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def generate(rows: int = 150, seed: int = 0) -> pd.DataFrame:
    """The 150 bundled flowers as they are, or ``rows`` resampled flowers with small seeded noise."""
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=dict(zip(bunch.feature_names, MEASUREMENTS, strict=True)))
    frame["species"] = bunch.target_names[bunch.target.to_numpy()]
    frame = frame[MEASUREMENTS + ["species"]]
    if rows != len(frame):
        rng = np.random.default_rng(seed)
        frame = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
        noise = rng.normal(0.0, 0.05, size=(rows, len(MEASUREMENTS)))
        frame[MEASUREMENTS] = (frame[MEASUREMENTS] + noise).clip(lower=0.1).round(2)
    frame.insert(0, "sample_id", [f"iris-{seed}-{i:07d}" for i in range(len(frame))])
    return frame
