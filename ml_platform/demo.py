"""Demo landing data for the shipped models (the generators belong to each model's team)."""

from __future__ import annotations

from pathlib import Path

from ml_platform.lifecycle.spec import validate_model_name
from ml_platform.settings import PlatformPaths

DEMO_ROWS = {"iris": 150, "conversion": 20_000}


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
    landing.mkdir(parents=True, exist_ok=True)
    target = landing / f"demo-{'drift-' if drift else ''}seed{seed}.{file_format}"
    partial = landing / f".{target.name}.partial"
    if file_format == "csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(target)
    return target
