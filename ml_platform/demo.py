"""Demo landing data for any model whose team names a generator in its declaration (``demo_data``).

The platform knows no model here: a team's ``DemoData`` names its generator and the options that turn it
into a shifted batch (``--drift``) or a day of scoring traffic and its outcomes (``--scoring``, ``--feedback``).
"""

from __future__ import annotations

from pathlib import Path

from ml_platform.rules.spec import DemoData, ModelSpec, resolve_ref, validate_model_name
from ml_platform.settings import PlatformPaths


def demo_data_of(spec: ModelSpec) -> DemoData:
    """The model's demo-data declaration, or a ValueError saying how to add one."""
    if spec.demo_data is None:
        raise ValueError(
            f"model {spec.name!r} names no demo-data generator: add `demo_data: {{generator: "
            f"'package.module:function'}}` to its declaration (a function (rows, seed, **options) -> DataFrame)"
        )
    return spec.demo_data


def generate(model: str, rows: int | None = None, seed: int = 0, drift: bool = False):
    """``rows`` seeded landing rows of ``model`` (default: its demo size); with ``drift`` a shifted batch."""
    from ml_platform.discovery import get_spec

    spec = get_spec(validate_model_name(model))
    demo = demo_data_of(spec)
    options = {}
    if drift:
        if demo.drift is None:
            raise ValueError(f"--drift: the demo generator of {model!r} declares no drift options (demo_data.drift)")
        options = demo.drift
    return resolve_ref(demo.generator)(rows or demo.rows, seed, **options)


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
    from ml_platform.discovery import get_spec

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


def _scoring_sessions(spec: ModelSpec, rows: int | None, seed: int, shifted_outcomes: bool = False):
    """A day of scoring traffic; the same rows and seed give the same sessions (keys and features)."""
    demo = demo_data_of(spec)
    if demo.scoring is None:
        raise ValueError(
            f"--scoring/--feedback: the demo generator of {spec.name!r} declares no scoring options (demo_data.scoring)"
        )
    if shifted_outcomes and demo.degraded is None:
        raise ValueError(f"--degraded: the demo generator of {spec.name!r} declares no degraded options")
    if rows is not None and rows < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    options = demo.scoring | (demo.degraded if shifted_outcomes else {})
    return resolve_ref(demo.generator)(rows or demo.scoring_rows, seed, **options)


def write_scoring_batch(
    model: str, rows: int | None = None, seed: int = 0, file_format: str = "csv", paths: PlatformPaths | None = None
) -> Path:
    """A scoring batch ``demo-scoring-seed<seed>`` in ``<home>/scoring/<model>/``: a day of sessions, no label."""
    from ml_platform.discovery import get_spec

    spec = get_spec(model)
    frame = _scoring_sessions(spec, rows, seed).drop(columns=[spec.label])
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
    from ml_platform.discovery import get_spec

    spec = get_spec(model)
    frame = _scoring_sessions(spec, rows, seed, shifted_outcomes=degraded)[[spec.key_column, spec.label]]
    paths = paths or PlatformPaths.from_environment()
    name = f"demo-feedback-seed{seed}{'-degraded' if degraded else ''}"
    return _write(frame, paths.feedback(spec.name), name, file_format)
