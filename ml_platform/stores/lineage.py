"""Code version, package versions and fingerprints: what a release candidate must carry.

A model without its data version, code version, parameters and metric evidence is not a release
candidate. This module gathers the code half of that; the data half is the snapshot id.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ml_platform.settings import PROJECT_ROOT

TRACKED_PACKAGES = ("ml-platform", "dagster", "mlflow", "scikit-learn", "pandas", "pandera", "numpy", "pyarrow")


@dataclass(frozen=True)
class CodeVersion:
    commit: str
    dirty: bool
    source: str

    @property
    def label(self) -> str:
        return f"{self.commit[:12]}{'+dirty' if self.dirty else ''}"


def code_version(root: Path = PROJECT_ROOT) -> CodeVersion:
    """The git commit of the platform code, and whether the tree had uncommitted changes.

    ``ML_PLATFORM_CODE_VERSION`` wins: a container image has no ``.git``, so its build stamps it.
    """
    stamped = os.environ.get("ML_PLATFORM_CODE_VERSION")
    if stamped:
        return CodeVersion(stamped, False, "ML_PLATFORM_CODE_VERSION")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return CodeVersion("unknown", True, "no git repository")
    return CodeVersion(commit.stdout.strip(), bool(status.stdout.strip()), "git")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def candidate_fingerprint(snapshot_id: str, code: CodeVersion, params_digest: str) -> str:
    """Two candidates with the same fingerprint are the same release: same data, code and parameters."""
    return hashlib.sha256(f"{snapshot_id}|{code.commit}|{code.dirty}|{params_digest}".encode()).hexdigest()
