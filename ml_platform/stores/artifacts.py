"""Hashes of a registered version's model files: recorded at registration, verified at every load (platform-owned).

Loading a model runs its deserializer, and the files live wherever the artifact store keeps them (a
folder, a bucket) -- a place more people and processes can write than the registry. So when a version
is registered, the SHA-256 of every file of its model is recorded on the version as a tag (the manifest,
``{relative path: sha256}``, and the manifest's own digest), and every load downloads the files,
checks them against that manifest and reads the model from the checked copy, never from the store a
second time (nothing can change between the check and the read).

A version registered before manifests were recorded has none. Serving refuses it by name
(``ArtifactUnverified``: re-register it through the gated graph, or record its manifest with
``record_manifest`` once its files are known to be good); batch scoring and champion re-scoring
still load it, as they did when it was registered (``require_manifest=False``), so an upgrade does not
stop a running lifecycle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ml_platform.errors import ArtifactTampered, ArtifactUnverified
from ml_platform.keys import REGISTRY_TAG
from ml_platform.rules.evidence import capped
from ml_platform.stores.snapshot import file_sha256

MANIFEST_TAG = f"{REGISTRY_TAG}artifact_manifest"
MANIFEST_DIGEST_TAG = f"{REGISTRY_TAG}artifact_manifest_sha256"
MAX_TAG_CHARS = 4900  # MLflow caps tag values at 5,000 characters
# Written by MLflow into the model's folder when a version is registered (and rewritten for each version
# registered from the same logged model): the registered name and version, which loading never executes.
MLFLOW_REGISTRATION_FILES = frozenset({"registered_model_meta"})


def folder_manifest(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every model file under ``folder``, sorted by path."""
    files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*")) if path.is_file()}
    return {name: file_sha256(path) for name, path in files.items() if name not in MLFLOW_REGISTRATION_FILES}


def manifest_digest(manifest: Mapping[str, str]) -> str:
    """One hash for the whole manifest: it changes when any file, name or hash does."""
    return hashlib.sha256(json.dumps(dict(manifest), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifest_tags(manifest: Mapping[str, str], source: str) -> dict[str, str]:
    """The version tags that record a manifest.

    Raises:
        ValueError: the manifest does not fit in a tag (a model of very many files).
    """
    text = json.dumps(dict(manifest), sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_TAG_CHARS:
        raise ValueError(
            f"the artifact manifest of {source!r} lists {len(manifest)} files ({len(text):,} characters); a registry "
            f"tag holds at most {MAX_TAG_CHARS:,}. Log the model with fewer files (one serialized pipeline)."
        )
    return {MANIFEST_TAG: text, MANIFEST_DIGEST_TAG: manifest_digest(manifest)}


@contextmanager
def downloaded(artifact_uri: str) -> Iterator[Path]:
    """A private local copy of the model files at ``artifact_uri``, deleted on exit."""
    import mlflow.artifacts
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    # MLflow draws a progress bar on stderr for every download: in the middle of a run's gate summary and
    # of a server's log it is noise a person cannot act on (a model is a handful of small files).
    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"
    folder = Path(tempfile.mkdtemp(prefix="ml_platform-model-"))
    try:
        yield Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def manifest_of(artifact_uri: str) -> dict[str, str]:
    """The manifest of the model files at ``artifact_uri`` as they are now (at registration).

    A source with no files at all (a run registered without a logged model) gets an empty manifest:
    there is nothing to load, and a file appearing there later is refused as not recorded.
    """
    from mlflow.exceptions import MlflowException

    try:
        with downloaded(artifact_uri) as folder:
            return folder_manifest(folder)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return {}


def recorded_manifest(tags: Mapping[str, str], model: str, version: str) -> dict[str, str] | None:
    """The manifest a version's tags record, ``None`` when it has none.

    Raises:
        ArtifactTampered: the manifest tag was edited (it no longer matches its recorded digest).
    """
    text = tags.get(MANIFEST_TAG)
    if text is None:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest_digest(manifest) != tags.get(MANIFEST_DIGEST_TAG):
        raise ArtifactTampered(
            f"model {model!r} version {version}: its artifact manifest (tag {MANIFEST_TAG}) does not match the digest "
            f"recorded beside it (tag {MANIFEST_DIGEST_TAG}); the tags were edited after registration. The version "
            "will not be loaded."
        )
    return manifest


def verify(folder: Path, manifest: Mapping[str, str], model: str, version: str) -> None:
    """Refuse a model copy whose files differ from the manifest, naming each file that differs.

    Raises:
        ArtifactTampered: a file changed, is missing, or was added since registration.
    """
    found = folder_manifest(folder)
    changed = sorted(name for name in manifest if name in found and found[name] != manifest[name])
    missing = sorted(set(manifest) - set(found))
    added = sorted(set(found) - set(manifest))
    if not (changed or missing or added):
        return
    problems = [
        *(f"{name}: sha256 {found[name][:16]}… (recorded {manifest[name][:16]}…)" for name in changed[:5]),
        *([f"missing {capped(missing, 5)}"] if missing else []),
        *([f"not recorded {capped(added, 5)}"] if added else []),
    ]
    raise ArtifactTampered(
        f"model {model!r} version {version}: its artifact files differ from the hashes recorded at registration: "
        + "; ".join(problems)
        + ". The version will not be loaded. Restore the files from a backup, or register a new version through "
        "the gated graph."
    )


def require_manifest(manifest: Mapping[str, str] | None, model: str, version: str) -> Mapping[str, str]:
    if manifest is None:
        raise ArtifactUnverified(
            f"model {model!r} version {version}: no artifact hashes were recorded for it (tag {MANIFEST_TAG}; it was "
            "registered before the platform recorded them), so its files cannot be verified and it will not be "
            "served. Re-register it through the gated graph (a new candidate run), or, if its files are known to be "
            "good, record them with `ml-platform record-manifest MODEL VERSION`."
        )
    return manifest


@contextmanager
def verified_copy(store, model: str, version: str, *, required: bool = True) -> Iterator[Path]:
    """A private local copy of a version's model files, checked against its manifest.

    With ``required=False`` a version without a manifest is copied unchecked (see the module docstring).

    Raises:
        ArtifactTampered: a file differs from the manifest.
        ArtifactUnverified: the version has no manifest and ``required`` is set.
    """
    client = store.client()
    tags = dict(client.get_model_version(model, str(version)).tags or {})
    manifest = recorded_manifest(tags, model, str(version))
    if required:
        require_manifest(manifest, model, str(version))
    with downloaded(client.get_model_version_download_uri(model, str(version))) as folder:
        if manifest is not None:
            verify(folder, manifest, model, str(version))
        yield folder


def record_manifest(store, model: str, version: str) -> dict[str, str]:
    """Record the manifest of a version registered without one, from its files as they are now.

    This trusts today's bytes: use it only for a version whose files are known to be the ones registered.
    """
    client = store.client()
    tags = dict(client.get_model_version(model, str(version)).tags or {})
    if recorded_manifest(tags, model, str(version)) is not None:
        raise ValueError(f"model {model!r} version {version} already has an artifact manifest; it is never replaced")
    manifest = manifest_of(client.get_model_version_download_uri(model, str(version)))
    for key, value in manifest_tags(manifest, f"{model} v{version}").items():
        client.set_model_version_tag(model, str(version), key, value)
    return manifest
