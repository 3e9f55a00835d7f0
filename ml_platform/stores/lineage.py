"""Code version, package versions and fingerprints: what a release candidate must carry.

A model without its data version, code version, parameters and metric evidence is not a release
candidate. This module gathers the code half of that; the data half is the snapshot id.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from ml_platform.rules.spec import ModelSpec
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


def model_code_identity(spec: ModelSpec) -> str:
    """A hash of the code this model runs: its declaration, the source files of the modules its contract,
    feature contract and pipeline references name, and the platform's own version and source.

    Not the repository's commit or dirty flag: another team's uncommitted file must not re-version this
    model (those stay lineage tags). A change to this model's pipeline or contract module does.
    """
    digest = hashlib.sha256(spec.model_dump_json().encode())
    refs = sorted({ref.partition(":")[0] for ref in (spec.contract, spec.feature_contract, spec.pipeline) if ref})
    for module in refs:
        digest.update(f"|{module}|".encode())
        digest.update(_module_source(module))
    digest.update(f"|ml_platform {platform_version()}".encode())
    return digest.hexdigest()


def _module_source(module: str) -> bytes:
    found = importlib.util.find_spec(module)
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise ImportError(f"module {module!r} named by the model's spec has no source file to fingerprint")
    return Path(found.origin).read_bytes()


@cache
def platform_version() -> str:
    """The platform's package version and a hash of its source files: what every model's run depends on."""
    import ml_platform

    package = Path(ml_platform.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return f"{ml_platform.__version__}+{digest.hexdigest()[:16]}"


def candidate_fingerprint(snapshot_id: str, code_identity: str, params_digest: str) -> str:
    """Two candidates with the same fingerprint are the same release: same data, model code and parameters."""
    return hashlib.sha256(f"{snapshot_id}|{code_identity}|{params_digest}".encode()).hexdigest()
