"""A candidate's evidence figures rendered into PNG files by a separate process, while the step goes on.

Rendering costs one to two seconds, most of it importing matplotlib (docs/benchmarks.md, profile 11),
and it needs nothing the step is doing meanwhile: logging the candidate to MLflow. In a process of its
own the rendering runs on another core during that logging instead of after it. The files are the same
PNG bytes ``figures.report_figures`` gives in process (the same function draws them); the step still
logs them to MLflow and embeds them in the UI's metadata.

    python -m ml_platform.stores.figure_files <folder>   (the request in <folder>/request.json)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ml_platform
from ml_platform.errors import FigureRenderingFailed

REQUEST = "request.json"


class Rendering:
    """A background rendering: ``result()`` waits for it; leaving the ``with`` block stops it if it still
    runs and removes its folder (the caller keeps the bytes where the evidence belongs)."""

    def __init__(self, process: subprocess.Popen, folder: Path):
        self._process = process
        self.folder = folder

    def result(self, timeout: float = 600) -> dict[str, bytes]:
        """The PNG bytes by file name, read from the folder the renderer wrote them to.

        Raises:
            FigureRenderingFailed: the renderer failed or timed out.
        """
        try:
            stdout, stderr = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            self._process.kill()
            self._process.communicate()
            raise FigureRenderingFailed(f"the figure renderer did not finish within {timeout:.0f} s") from error
        if self._process.returncode != 0:
            lines = stderr.decode("utf-8", errors="replace").strip().splitlines() or ["(no output)"]
            raise FigureRenderingFailed(f"the figure renderer exited {self._process.returncode}: {lines[-1][:500]}")
        return {name: (self.folder / name).read_bytes() for name in json.loads(stdout)}

    def __enter__(self) -> Rendering:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()
        shutil.rmtree(self.folder, ignore_errors=True)


def render_in_background(report: dict, model: str, min_segment_f1: float | None, folder: Path) -> Rendering:
    """Start rendering ``report`` (``CandidateReport.as_dict()``) into PNG files in ``folder``, a
    scratch folder of its own that leaving the ``with`` block removes."""
    folder.mkdir(parents=True, exist_ok=True)
    package_parent = str(Path(ml_platform.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    request = {"report": report, "model": model, "min_segment_f1": min_segment_f1}
    (folder / REQUEST).write_text(json.dumps(request))
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    return Rendering(process, folder)


def main(argv: list[str]) -> int:
    from ml_platform.rules.figures import png_bytes, report_dict_figures

    folder = Path(argv[0])
    request = json.loads((folder / REQUEST).read_text())
    names = []
    for name, figure in report_dict_figures(request["report"], request["model"], request["min_segment_f1"]).items():
        (folder / name).write_bytes(png_bytes(figure))
        names.append(name)
    json.dump(names, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
