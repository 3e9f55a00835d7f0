"""Storage faults: a snapshot damaged on disk, and storage that refuses a new snapshot.

Both go through real in-process runs of the iris graph on a real Dagster instance, a real MLflow store
and real files. The storage refusals are made by the operating system itself, not by a patched
function: a full file system (a tiny tmpfs), a folder nobody may write (``chmod`` for an ordinary user,
the immutable attribute for root, whom ``chmod`` does not stop), and a folder path taken by a file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from botany.iris.demo_data import generate as iris_rows

from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import current_champion
from ml_platform_tests.harness import Platform, failure_messages, materialized, unique_spec
from ml_platform_tests.models import IRIS
from ml_platform_tests.reliability.conftest import assert_promises, file_hashes, registered_versions, stored_ids

pytestmark = pytest.mark.reliability


def flip_byte(path: Path, offset: int = 200) -> None:
    """Change one byte in the middle of a file, as bit rot or a careless edit would (root can write 0o444)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_snapshot_is_refused_by_training_and_a_new_snapshot_recovers(iris, iris_frame):
    """Bit rot must never reach a model: each reader verifies the hash, and the champion stays.

    The feature frame is damaged first (``candidate_model`` reads it), then the dataset snapshot
    (``validated_features`` reads it). Taking the snapshot and the feature frame again recovers: the
    damaged copies are moved aside (hidden, kept for inspection, never trusted) and written anew under
    the same ids, and every gate passes on them.
    """
    iris.land(iris_frame)
    landing = file_hashes(iris.landing)
    assert iris.materialize().success
    champion = current_champion(iris.store, iris.spec.name)
    assert champion is not None and champion.version == "1"
    snapshot_id, features_id = champion.tags["ml_platform.snapshot_id"], champion.tags["ml_platform.features_id"]
    snapshots, features = iris.paths.snapshots(iris.spec.name), iris.paths.features(iris.spec.name)

    flip_byte(features / features_id / "data.parquet")
    refused = iris.materialize("candidate_model", "registry_entry")
    assert not refused.success
    message = failure_messages(refused)
    assert f"candidate_model '{iris.spec.name}'" in message
    assert f"snapshot {features_id}" in message and "has sha256" in message and "recorded" in message
    assert "Take a new snapshot" in message
    assert materialized(refused) == []

    flip_byte(snapshots / snapshot_id / "data.parquet", offset=333)
    refused = iris.materialize("validated_features", "candidate_model", "registry_entry")
    assert not refused.success
    assert f"validated_features '{iris.spec.name}'" in failure_messages(refused)
    assert f"snapshot {snapshot_id}" in failure_messages(refused)
    assert materialized(refused) == []
    assert current_champion(iris.store, iris.spec.name).version == "1"
    assert list(registered_versions(iris.store, iris.spec.name)) == ["1"]

    recovered = iris.materialize("dataset_snapshot", "validated_features")
    assert recovered.success, failure_messages(recovered)
    assert stored_ids(snapshots) == [snapshot_id] and stored_ids(features) == [features_id]
    assert len([p for p in snapshots.iterdir() if p.name.startswith(".corrupt-")]) == 1
    assert len([p for p in features.iterdir() if p.name.startswith(".corrupt-")]) == 1
    assert list(registered_versions(iris.store, iris.spec.name)) == ["1"]
    assert current_champion(iris.store, iris.spec.name).version == "1"
    assert_promises(iris, landing)


@contextlib.contextmanager
def full_disk(folder: Path) -> Iterator[str]:
    """A file system of one page mounted on ``folder``: writes fail with ENOSPC, as on a full disk."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"LOUD SKIP: cannot mount a small tmpfs here ({mounted.stderr.strip()[:120]}); needs CAP_SYS_ADMIN")
    try:
        yield "No space left on device"
        held = open_files_under(folder)
        assert not held, f"files under the full disk are still open after the failure (space not freed): {held}"
    finally:
        if subprocess.run(["umount", str(folder)]).returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def open_files_under(folder: Path) -> list[str]:
    """The files this process holds open under ``folder`` (Linux ``/proc``)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                held.append(target)
    return held


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[str]:
    """A folder this process may not write into: ``chmod`` for a user, the immutable attribute for root."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(0o755)
        return
    chattr = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if chattr.returncode != 0:
        pytest.skip(f"LOUD SKIP: root, and `chattr +i` is refused here ({chattr.stderr.strip()[:120]})")
    try:
        yield "Operation not permitted"
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@contextlib.contextmanager
def folder_taken_by_a_file(folder: Path) -> Iterator[str]:
    """A file stands where the snapshot folder should be: works for every user on every file system."""
    aside = folder.with_name(f"{folder.name}.aside")
    folder.rename(aside)
    folder.write_text("not a folder")
    try:
        yield "File exists"
    finally:
        folder.unlink()
        aside.rename(folder)


@pytest.fixture(scope="module")
def iris_with_champion(tmp_path_factory, mlflow_store) -> Iterator[Platform]:
    """One iris platform with a champion, shared by the storage-refusal cases (each leaves it as it found it)."""
    root = tmp_path_factory.mktemp("storage-faults")
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root)) as instance:
        platform = Platform(unique_spec(IRIS), PlatformPaths(root / "home"), instance, mlflow_store)
        platform.land(iris_rows())
        assert platform.materialize().success
        yield platform


@pytest.mark.parametrize("fault", [full_disk, read_only_folder, folder_taken_by_a_file], ids=lambda f: f.__name__)
def test_storage_that_refuses_a_snapshot_fails_clearly_and_leaves_nothing_behind(fault, iris_with_champion):
    """A refused write names the asset and the folder, leaves no partial snapshot, and stops the run.

    The champion from an earlier run stays, and the new landing data stays where it landed: nothing is
    lost. A full disk is not retried (a retry cannot free space), so the failure comes at once.
    """
    iris = iris_with_champion
    snapshots = iris.paths.snapshots(iris.spec.name)
    before = stored_ids(snapshots)
    iris.land(iris_rows(rows=300, seed=len(fault.__name__)), name="export-new.csv")  # new data: a new snapshot
    landing = file_hashes(iris.landing)

    with fault(snapshots) as cause:
        result = iris.materialize()
        leftovers = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []

    assert not result.success
    message = failure_messages(result)
    assert f"dataset_snapshot '{iris.spec.name}'" in message and str(snapshots) in message, message
    assert cause in message and "No partial snapshot was left behind" in message, message
    assert materialized(result) == [], "a step after the refused snapshot ran"
    assert [name for name in leftovers if name not in before] == [], f"partial snapshot visible: {leftovers}"
    assert stored_ids(snapshots) == before
    assert current_champion(iris.store, iris.spec.name).version == "1"
    assert list(registered_versions(iris.store, iris.spec.name)) == ["1"]
    assert_promises(iris, landing)
