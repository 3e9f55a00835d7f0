"""Demo landing data for the shipped models (the generators belong to each model's team)."""

from __future__ import annotations

from pathlib import Path

from ml_platform.rules.spec import validate_model_name
from ml_platform.settings import PlatformPaths

DEMO_ROWS = {"iris": 150, "conversion": 20_000}
SCORING_ROWS = 5_000  # a day of conversion traffic: enough labelled rows for one judged window


def generate(model: str, rows: int | None = None, seed: int = 0, drift: bool = False):
    validate_model_name(model)
    if drift and model != "conversion":
        raise ValueError(f"--drift: only the conversion demo generator can shift its distributions, not {model!r}")
    if model == "iris":
        from ml_platform.models.iris.demo_data import generate as iris

        return iris(rows or DEMO_ROWS["iris"], seed)
    if model == "conversion":
        from ml_platform.models.conversion.demo_data import generate as conversion

        return conversion(rows or DEMO_ROWS["conversion"], seed, campaign=drift)
    raise ValueError(f"no demo data generator for model {model!r}; models with one: {sorted(DEMO_ROWS)}")


def write_demo_data(
    model: str,
    rows: int | None = None,
    seed: int = 0,
    file_format: str = "csv",
    paths: PlatformPaths | None = None,
    drift: bool = False,
) -> Path:
    """Write one landing file ``demo-seed<seed>.<format>``, replacing an earlier demo file of that seed.

    With ``drift`` the file is ``demo-drift-seed<seed>.<format>``: a shifted batch (a campaign) that lands
    beside the others, for the drift sensor to judge.

    The file is written under a hidden name and renamed, so a snapshot never reads half of it.
    """
    from ml_platform.models import get_spec

    if rows is not None and rows < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    frame = generate(model, rows, seed, drift)
    landing = get_spec(model).landing_path((paths or PlatformPaths.from_environment()).home)
    return _write(frame, landing, f"demo-{'drift-' if drift else ''}seed{seed}", file_format)


def _write(frame, folder: Path, name: str, file_format: str) -> Path:
    """Write under a hidden name and rename, so no sensor ever reads half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.{file_format}"
    partial = folder / f".{target.name}.partial"
    if file_format == "csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(target)
    return target


def _scoring_sessions(model: str, rows: int | None, seed: int, shifted_outcomes: bool = False):
    """A day of conversion sessions; the same rows and seed give the same sessions (keys and features)."""
    validate_model_name(model)
    if model != "conversion":
        raise ValueError(f"--scoring/--feedback: only the conversion demo generator writes them, not {model!r}")
    if rows is not None and rows < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    from ml_platform.models.conversion.demo_data import generate as conversion

    return conversion(rows or SCORING_ROWS, seed, days=1.0, shifted_outcomes=shifted_outcomes)


def write_scoring_batch(
    model: str, rows: int | None = None, seed: int = 0, file_format: str = "csv", paths: PlatformPaths | None = None
) -> Path:
    """A scoring batch ``demo-scoring-seed<seed>`` in ``<home>/scoring/<model>/``: a day of sessions, no label."""
    from ml_platform.models import get_spec

    spec = get_spec(model)
    frame = _scoring_sessions(model, rows, seed).drop(columns=[spec.label])
    paths = paths or PlatformPaths.from_environment()
    return _write(frame, paths.scoring(spec.name), f"demo-scoring-seed{seed}", file_format)


def write_feedback(
    model: str,
    rows: int | None = None,
    seed: int = 0,
    degraded: bool = False,
    file_format: str = "csv",
    paths: PlatformPaths | None = None,
) -> Path:
    """The outcomes (key and label) of the scoring batch of the same ``seed`` and ``rows``, in
    ``<home>/feedback/<model>/``.

    With ``degraded`` the outcomes come from a changed market (concept drift): the champion's live metric drops.
    """
    from ml_platform.models import get_spec

    spec = get_spec(model)
    frame = _scoring_sessions(model, rows, seed, shifted_outcomes=degraded)[[spec.key_column, spec.label]]
    paths = paths or PlatformPaths.from_environment()
    name = f"demo-feedback-seed{seed}{'-degraded' if degraded else ''}"
    return _write(frame, paths.feedback(spec.name), name, file_format)
