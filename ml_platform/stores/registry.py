"""MLflow tracking and registry operations (platform-owned; no Dagster here).

Aliases, not the deprecated stages: ``champion`` is what serving loads, ``previous-champion`` keeps
the one it replaced reachable for rollback. MLflow keeps no history of alias moves (mlflow#2169), so
every promotion also writes tags on the versions involved, and the Dagster materialization of
``registry_entry`` records it.

MLflow offers no compare-and-set on an alias (``set_registered_model_alias`` overwrites whatever is
there), so every read-decide-move of ``champion`` happens under a lock file per model (``Store.lock``),
and the alias is read back after the move. Two runs promoting the same model at once therefore see each
other: the second finds that the champion it was compared with has changed, and its version is kept
without an alias, tagged with the reason (``ml_platform.not_promoted``).

A promotion is several writes (the version, the previous champion's tags and alias, ``champion``, the
ledger record), and a process can die between any two. So the new version is created carrying a
*promotion intent* (``ml_platform.promotion_intent``: the alias it is to get, the champion it was
compared with, the ledger record to write) and a ``ml_platform.promotion_pending`` tag, removed only
once every write is done. Whoever next takes the model's lock (the next registration, a re-executed
step, ``ml_platform.stores.recovery.reconcile``) finds the pending intent -- under the lock it can only
be one a dead or failed process left -- and carries it out the same way: it finishes the move when the
version's gates all passed and the champion is still the one it was compared with, else it puts the
half-done move back and tags the version ``ml_platform.not_promoted`` with the reason. Each write is
idempotent and the ledger record is keyed by version and intent, so it happens exactly once.

``mlflow`` is imported inside the functions: it costs seconds, and loading the Dagster definitions
must not pay it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ml_platform.errors import ChampionMoved, PromotionBlocked
from ml_platform.keys import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, REGISTRY_TAG, ModelKeys
from ml_platform.rules.policy import unpassed_gates
from ml_platform.stores.ledger import Decision

if TYPE_CHECKING:
    from ml_platform.settings import PlatformPaths

NOT_PROMOTED = f"{REGISTRY_TAG}not_promoted"  # why a registered version that passed its gates never got an alias
PROMOTION_INTENT = f"{REGISTRY_TAG}promotion_intent"  # what a registration set out to do, kept for good
PROMOTION_PENDING = f"{REGISTRY_TAG}promotion_pending"  # the intent's id, until every write of it is done
PROMOTION_OUTCOME = f"{REGISTRY_TAG}promotion_outcome"  # promoted, held or not-promoted, once done
LOCK_TIMEOUT_SECONDS = 120.0

# Records a decision in the ledger under a key, once: returns it if this call recorded it, else None.
Recorder = Callable[[Decision, str], "Decision | None"]


@dataclass(frozen=True)
class Store:
    """Where MLflow keeps runs, models and artifacts, and where the registry's per-model locks live.

    ``lock_dir`` holds one lock file per model. Without it, a SQLite registry keeps them beside its
    database file (every writer of that file is on this machine), and a registry behind a server keeps
    them under the platform home (``<home>/locks``), which the CLI and the Dagster runs of one machine
    share. Across machines a file lock is no guard: there, the run queue's one-run-per-model limit and
    the read-back after each alias move are.
    """

    tracking_uri: str
    registry_uri: str
    artifact_root: str
    lock_dir: str | None = None

    @classmethod
    def from_paths(cls, paths: PlatformPaths) -> Store:
        """The store a platform home names (its URIs follow the environment; see ml_platform/settings.py)."""
        return cls(paths.tracking_uri, paths.registry_uri, paths.artifact_root)

    def lock_path(self, model: str) -> Path:
        if self.lock_dir:
            folder = Path(self.lock_dir)
        elif self.registry_uri.startswith("sqlite:///"):
            database = unquote(self.registry_uri.removeprefix("sqlite:///").split("?", 1)[0])
            folder = Path(database).parent / "registry-locks"  # relative to the working folder, as SQLAlchemy
        else:
            from ml_platform.settings import PlatformPaths

            folder = PlatformPaths.from_environment().home / "locks"
        name = model if re.fullmatch(r"[A-Za-z0-9_-]+", model) else hashlib.sha256(model.encode()).hexdigest()
        return folder / f"{name}.lock"

    @contextmanager
    def lock(self, model: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[Path]:
        """Hold the model's registry lock: one read-decide-move of its aliases at a time.

        Raises:
            TimeoutError: another process held it for ``timeout`` seconds (worth a retry).
        """
        path = self.lock_path(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"registry lock {path} for model {model!r} was held by another run for more "
                            f"than {timeout:.0f} s; retry, or look for a stuck process holding it"
                        ) from None
                    time.sleep(0.05)
            try:
                yield path
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def client(self):
        import mlflow
        from mlflow import MlflowClient

        from ml_platform.settings import bound_server_waits

        bound_server_waits(self.tracking_uri, self.registry_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def experiment_id(self, model: str) -> str:
        """The model's experiment, created with its artifacts under the platform's artifact root."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        name = ModelKeys(model).experiment
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=f"{self.artifact_root.rstrip('/')}/{model}")
        except MlflowException:
            experiment = client.get_experiment_by_name(name)  # created meanwhile by a concurrent run
            if experiment is None:
                raise
            return experiment.experiment_id


def ensure_mlflow_store(paths: PlatformPaths) -> None:
    """Create and migrate the MLflow store once, before steps that might do it at the same time.

    Two processes migrating a fresh SQLite store at once fail with "duplicate column name".
    """
    Store.from_paths(paths).client().search_experiments(max_results=1)


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class Registration:
    version: str
    promoted: bool
    previous_champion: str | None
    note: str
    alias: str | None = None  # the alias the new version received: champion, challenger, or none


def current_champion(store: Store, model: str) -> Champion | None:
    return alias_holder(store, model, CHAMPION)


def alias_holder(store: Store, model: str, alias: str) -> Champion | None:
    """The version ``alias`` points at, with its tags, in one registry call; ``None`` where there is none."""
    from mlflow.exceptions import MlflowException

    client = store.client()
    try:
        version = client.get_model_version_by_alias(model, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return Champion(str(version.version), version.run_id, dict(version.tags))


def load_version(store: Store, model: str, version: str, *, require_manifest: bool = False):
    """A registered version's pipeline, read only if its files lie under the store's own artifact root
    and match the hashes recorded at registration (``stores.artifacts``).

    Loading deserializes (skops, or pickle for whatever a version's ``MLmodel`` names): anyone who can
    write the registry could register a version whose source is a file elsewhere and point ``champion``
    at it. Such a version is refused before a byte of it is read; so is one whose files changed.
    ``require_manifest`` also refuses a version registered before hashes were recorded (serving does).
    """
    import mlflow.sklearn

    from ml_platform.stores.artifacts import verified_copy

    client = store.client()
    location = client.get_model_version_download_uri(model, str(version))
    if not _is_under(location, store.artifact_root):
        raise PromotionBlocked(
            f"model {model!r} version {version}: its files are at {location!r}, not under the platform's artifact "
            f"root {store.artifact_root!r}; it will not be loaded (loading a model runs its deserializer). "
            "Was the registry edited by hand? Register versions only through the platform."
        )
    with verified_copy(store, model, str(version), required=require_manifest) as folder:
        return mlflow.sklearn.load_model(str(folder))


def _is_under(location: str, root: str) -> bool:
    """Whether an artifact URI (or plain path) lies inside the root URI, after resolving '..'."""
    import posixpath

    found, base = urlsplit(location), urlsplit(root)
    if (found.scheme or "file") != (base.scheme or "file") or found.netloc != base.netloc:
        return False
    path, prefix = posixpath.normpath(unquote(found.path) or "/"), posixpath.normpath(unquote(base.path) or "/")
    return path.startswith(prefix.rstrip("/") + "/")


def find_version_by_tag(store: Store, model: str, tag: str, value: str) -> str | None:
    client = store.client()
    if not _registered_model_exists(client, model):
        return None
    found = client.search_model_versions(f"name = '{model}' and tags.`{tag}` = '{value}'")
    return str(min(int(v.version) for v in found)) if found else None


def register_candidate(
    store: Store,
    model: str,
    run_id: str,
    model_uri: str,
    fingerprint: str,
    compared_champion: str | None,
    tags: dict[str, Any],
    promote: bool = True,
    record: Recorder | None = None,
    facts: dict[str, Any] | None = None,
) -> Registration:
    """Register a candidate whose gates all passed and move ``champion`` to it.

    An identical candidate (same fingerprint) is not registered twice. Everything from reading the
    champion to moving the alias happens under the model's registry lock, and begins by carrying out
    any promotion a killed run left half done (``settle_intents``). A candidate compared with a
    champion that is no longer champion (another run promoted meanwhile, or a person approved or
    rolled back) is registered -- it is not lost -- but gets no alias: its version is tagged
    ``ml_platform.not_promoted`` with the reason and ``ChampionMoved`` is raised, since its "no worse
    than champion" gate judged the wrong champion. With ``promote=False`` (the spec's manual
    promotion) the version gets the ``challenger`` alias instead and ``champion`` stays until
    ``approve``.

    Args:
        record: writes the ``promoted`` or ``held`` decision to the ledger, under the lock, before the
            intent is closed (without it, nothing is recorded: tests of the registry alone).
        facts: the ``scores`` and ``evidence`` of that decision, kept in the intent so that a recovery
            records the very same decision.

    Raises:
        ChampionMoved: the version was registered without an alias; re-run the graph to compare again.
    """
    from ml_platform.stores.artifacts import manifest_of, manifest_tags

    client = store.client()
    with store.lock(model):
        settled = settle_intents(store, model, record)
        existing = _version_with_fingerprint(client, model, fingerprint)
        champion = current_champion(store, model)
        if existing is not None:
            if existing in settled:
                return settled[existing]
            is_champion = champion is not None and champion.version == existing
            return Registration(
                existing,
                False,
                None,
                f"no-op: version {existing} already holds this candidate (same snapshot, code and parameters)"
                + ("; it is the champion" if is_champion else "; it is not the champion and stays so"),
            )
        current = champion.version if champion else None
        _ensure_registered_model(client, model)
        promoted_at = datetime.now(UTC).isoformat(timespec="seconds")
        stale = None
        if current != compared_champion:
            stale = (
                f"the candidate was compared with champion {_named(compared_champion)}, but the champion is now "
                f"{_named(current)} (another run or a person moved it meanwhile)"
            )
        version_tags = _version_tags(tags, fingerprint, current, promoted_at, stale, promote)
        version_tags |= manifest_tags(manifest_of(model_uri), model_uri)  # verified at every load
        intent = None
        if not stale:
            intent = _intent(CHAMPION if promote else CHALLENGER, current, _alias(client, model, PREVIOUS_CHAMPION),
                             promoted_at, facts or {})  # fmt: skip
            version_tags |= {PROMOTION_INTENT: _intent_tag(intent), PROMOTION_PENDING: intent["id"]}
        created = client.create_model_version(
            model, source=model_uri, run_id=run_id, tags=version_tags, model_id=_logged_model_id(model_uri)
        )
        version = str(created.version)
        if stale:
            raise ChampionMoved(
                f"registry_entry {model!r}: registered as version {version} but not promoted: {stale}. The "
                f"version keeps its evidence and the tag {NOT_PROMOTED}; re-materialize candidate_model to "
                f"compare a candidate with {_named(current)}.",
                version,
                current,
            )
        return _carry_out(client, model, version, version_tags, intent, record)


def settle_intents(store: Store, model: str, record: Recorder | None = None) -> dict[str, Registration]:
    """Finish or undo every promotion left pending, by version; the caller holds the model's lock.

    Under the lock a pending intent is never one in progress: its writer held the lock from creating
    the version to closing the intent, so it died or failed in between.
    """
    client = store.client()
    return {
        str(mv.version): _carry_out(client, model, str(mv.version), dict(mv.tags), _read_intent(mv.tags), record)
        for mv in pending_intents(store, model)
    }


def pending_intents(store: Store, model: str) -> list:
    """The versions whose promotion intent is not closed: one registry query, cheap enough for a sensor tick."""
    client = store.client()
    if not _registered_model_exists(client, model):
        return []
    found = client.search_model_versions(f"name = '{model}' and tags.`{PROMOTION_PENDING}` LIKE '%'")
    return sorted(found, key=lambda mv: int(mv.version))


def _intent(alias: str, expected: str | None, previous: str | None, at: str, facts: dict[str, Any]) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "alias": alias,
        "expected_champion": expected or "none",
        "previous_champion_alias": previous or "none",
        "at": at,
        "scores": facts.get("scores", {}),
        "evidence": facts.get("evidence", {}),
    }


def _intent_tag(intent: dict) -> str:
    """The intent as a tag value; its record's scores and evidence are left out if they would not fit
    (MLflow caps a tag at 5,000 characters, and a cut JSON text would not read back)."""
    text = json.dumps(intent, sort_keys=True, default=str)
    if len(text) <= 4900:
        return text
    return json.dumps({**intent, "scores": {}, "evidence": {"left_out": "too long for a registry tag"}})


def _read_intent(tags: dict[str, str]) -> dict:
    try:
        intent = json.loads(tags.get(PROMOTION_INTENT, ""))
    except ValueError:
        intent = None
    if not isinstance(intent, dict) or intent.get("alias") not in (CHAMPION, CHALLENGER):
        # A pending tag without a readable intent: nothing says which alias it was to get, so it gets none.
        return {"id": tags.get(PROMOTION_PENDING, "unreadable"), "alias": None, "expected_champion": "none",
                "previous_champion_alias": "none", "at": "", "scores": {}, "evidence": {}}  # fmt: skip
    return intent


def _carry_out(client, model: str, version: str, tags: dict[str, str], intent: dict, record) -> Registration:
    """Do (or redo) every write of a promotion intent, or put back what was done; record it; close it."""
    champion = _alias(client, model, CHAMPION)
    expected = None if intent["expected_champion"] == "none" else intent["expected_champion"]
    alias = intent["alias"]
    problems = gate_problems(tags) + ([f"it was left aside ({tags[NOT_PROMOTED]})"] if NOT_PROMOTED in tags else [])
    arrived = alias is not None and _alias(client, model, alias) == version
    if alias is None or problems or (not arrived and champion != expected):
        return _abandon(client, model, version, tags, intent, champion, problems, record)
    if alias == CHAMPION:
        _move_champion(client, model, version, expected, intent["at"])  # each write is idempotent
        note = f"version {version} is now champion" + (
            f"; version {expected} is previous-champion" if expected else " (first champion)"
        )
        kind = "promoted"
    else:
        client.set_registered_model_alias(model, CHALLENGER, version)
        note = f"version {version} is challenger, awaiting approval (manual promotion); champion stays " + (
            f"version {expected}" if expected else "unset"
        )
        kind = "held"
    decision = _intent_decision(model, version, intent, kind, f"every gate passed; {note}")
    _close(client, model, version, intent, kind, decision, record)
    return Registration(version, alias == CHAMPION, expected if alias == CHAMPION else None, note, alias)


def _abandon(client, model: str, version: str, tags: dict, intent: dict, champion: str | None, problems: list[str],
             record) -> Registration:  # fmt: skip
    """Put back what a half-done promotion wrote and leave its version without an alias, saying why."""
    expected = None if intent["expected_champion"] == "none" else intent["expected_champion"]
    if NOT_PROMOTED in tags:  # an earlier attempt at this very undo got that far
        why = tags[NOT_PROMOTED].split(": ", 1)[-1]
    elif intent["alias"] is None:
        why = "its promotion intent cannot be read, so nothing says which alias it was to get"
    elif problems:
        why = "its gates did not all pass: " + "; ".join(problems)
    else:
        why = (
            f"the candidate was compared with champion {_named(expected)}, but the champion is now "
            f"{_named(champion)} (moved while its promotion was interrupted)"
        )
    if expected:
        replaced = client.get_model_version(model, expected).tags.get(f"{REGISTRY_TAG}replaced_by")
        if replaced == version:
            for key in ("replaced_by", "replaced_at"):
                client.delete_model_version_tag(model, expected, f"{REGISTRY_TAG}{key}")
        previous = intent.get("previous_champion_alias", "none")
        if _alias(client, model, PREVIOUS_CHAMPION) == expected and previous != expected:
            if previous == "none":
                client.delete_registered_model_alias(model, PREVIOUS_CHAMPION)
            else:
                client.set_registered_model_alias(model, PREVIOUS_CHAMPION, previous)
    if NOT_PROMOTED not in tags:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        client.set_model_version_tag(model, version, NOT_PROMOTED, _tag_value(f"{now}: {why}"))
    reason = f"version {version} was registered but not promoted: {why}"
    decision = _intent_decision(model, version, intent, "rejected", reason, trigger="registry")
    _close(client, model, version, intent, "not-promoted", decision, record)
    return Registration(version, False, None, reason)


def _intent_decision(model: str, version: str, intent: dict, kind: str, reason: str, trigger: str = "gates"):
    evidence = {**intent.get("evidence", {}), "previous_champion": intent["expected_champion"],
                "promotion_intent": intent["id"]}  # fmt: skip
    return Decision(model, kind, trigger, reason, intent.get("scores", {}), evidence, version=version)


def _close(client, model: str, version: str, intent: dict, outcome: str, decision, record) -> None:
    """Record the decision (once, keyed by version and intent), then mark the intent done: the last write."""
    if record is not None:
        record(decision, f"promotion:{model}:v{version}:{intent['id']}")
    client.set_model_version_tag(model, version, PROMOTION_OUTCOME, outcome)
    client.delete_model_version_tag(model, version, PROMOTION_PENDING)


def _alias(client, model: str, alias: str) -> str | None:
    """The version an alias points at, or ``None`` when it is unset."""
    aliases = client.get_registered_model(model).aliases or {}
    found = aliases.get(alias)
    return str(found) if found is not None else None


def _ensure_registered_model(client, model: str) -> None:
    from mlflow.exceptions import MlflowException

    if _registered_model_exists(client, model):
        return
    try:
        client.create_registered_model(
            model, description=f"ml_platform model {model!r}; champion moves only through gates"
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile by a concurrent run
            raise


def _version_tags(
    tags: dict[str, Any], fingerprint: str, current: str | None, now: str, stale: str | None, promote: bool
) -> dict[str, str]:
    """A new version's tags: its evidence, and when it was promoted -- or why not (``stale``), or since when it
    awaits approval (manual promotion)."""
    version_tags = {
        **{k: _tag_value(v) for k, v in tags.items()},
        f"{REGISTRY_TAG}fingerprint": fingerprint,
        f"{REGISTRY_TAG}previous_champion": current or "none",
    }
    if stale:
        version_tags[NOT_PROMOTED] = _tag_value(f"{now}: {stale}")
    elif promote:
        version_tags[f"{REGISTRY_TAG}promoted_at"] = now
    else:
        version_tags[f"{REGISTRY_TAG}awaiting_approval_since"] = now
    return version_tags


def _version_with_fingerprint(client, model: str, fingerprint: str) -> str | None:
    """The first version registered for this very candidate; versions left without an alias because
    the champion moved under them do not count (a re-run compared with the new champion registers anew)."""
    if not _registered_model_exists(client, model):
        return None
    found = client.search_model_versions(f"name = '{model}' and tags.`{REGISTRY_TAG}fingerprint` = '{fingerprint}'")
    found = [v for v in found if NOT_PROMOTED not in (v.tags or {})]
    return str(min(int(v.version) for v in found)) if found else None


def _logged_model_id(model_uri: str) -> str | None:
    """The logged model's id in a ``models:/<model id>`` URI (what ``log_model`` returns in MLflow 3).

    A tracking server refuses such a source without the id ("the model_id request parameter must
    identify the resource that contains the source"); a SQLite store does not check. This is what
    ``mlflow.register_model`` passes too.
    """
    prefix = "models:/"
    rest = model_uri[len(prefix) :] if model_uri.startswith(prefix) else ""
    return rest if rest and "/" not in rest.strip("/") else None


def _named(version: str | None) -> str:
    return f"v{version}" if version else "(none)"


@dataclass(frozen=True)
class AliasMove:
    """A move of ``champion`` by a person: an approval or a rollback."""

    model: str
    version: str
    replaced: str | None
    note: str


def gate_problems(tags: dict[str, str]) -> list[str]:
    """The gates a version's tags record as failed or missing (``rules.policy.unpassed_gates``); empty when
    all of them passed. Every move of an alias onto a version asks this first."""
    try:
        recorded = json.loads(tags.get(f"{REGISTRY_TAG}gates", ""))
    except ValueError:
        recorded = None
    return unpassed_gates(recorded)


def approve(
    store: Store,
    model: str,
    version: str,
    actor: str,
    note: str = "",
    on_moved: Callable[[AliasMove], None] | None = None,
) -> AliasMove:
    """Move ``champion`` to a version that passed every gate and waits as ``challenger``, or refuse.

    Refused: a version with a failed or missing gate, the current champion, and a version compared
    with a champion that is no longer champion (its "no worse than champion" gate is out of date).
    ``on_moved`` (the ledger record) runs under the lock right after the move, so a reconciliation
    never sees the moved alias before its record.
    """
    client = store.client()
    mv = _model_version(client, model, version)
    tags = dict(mv.tags)
    problems = gate_problems(tags)
    if problems:
        raise PromotionBlocked(
            f"approve {model!r} v{version}: refused, its gates did not all pass: " + "; ".join(problems)
        )
    with store.lock(model):
        champion = current_champion(store, model)
        current = champion.version if champion else None
        if current == str(version):
            raise PromotionBlocked(f"approve {model!r} v{version}: it is already the champion")
        compared = tags.get(f"{REGISTRY_TAG}compared_with_champion", "none")
        if compared != (current or "none"):
            raise PromotionBlocked(
                f"approve {model!r} v{version}: refused, it was compared with champion "
                f"{'v' + compared if compared != 'none' else '(none)'}, but the champion is now "
                f"{'v' + current if current else '(none)'}. Re-run the model's graph to compare a candidate with it."
            )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for key, value in {"approved_by": actor, "approved_at": now, "approval_note": note, "promoted_at": now,
                           "previous_champion": current or "none"}.items():  # fmt: skip
            client.set_model_version_tag(model, str(version), f"{REGISTRY_TAG}{key}", _tag_value(value))
        _move_champion(client, model, str(version), current, now)
        if CHALLENGER in (getattr(mv, "aliases", None) or []):
            client.delete_registered_model_alias(model, CHALLENGER)
        move = AliasMove(
            model, str(version), current, f"version {version} is now champion, approved by {actor}"
            + (f"; version {current} is previous-champion" if current else " (first champion)"),
        )  # fmt: skip
        if on_moved is not None:
            on_moved(move)
    return move


def rollback(
    store: Store,
    model: str,
    actor: str,
    reason: str,
    to: str | None = None,
    on_moved: Callable[[AliasMove], None] | None = None,
) -> AliasMove:
    """Move ``champion`` back: to ``to``, or by default to ``previous-champion``.

    The target must be a version whose gates all passed; the version rolled back from becomes
    ``previous-champion``, so a rollback can itself be undone. ``on_moved`` runs under the lock right
    after the move, as in ``approve``.
    """
    client = store.client()
    with store.lock(model):
        champion = current_champion(store, model)
        if champion is None:
            raise LookupError(f"rollback {model!r}: there is no champion to roll back")
        if to is None:
            try:
                to = str(client.get_model_version_by_alias(model, PREVIOUS_CHAMPION).version)
            except Exception as error:  # MLflow raises its own exception type for an unset alias
                raise LookupError(
                    f"rollback {model!r}: there is no previous-champion to roll back to; name a version with --to"
                ) from error
        mv = _model_version(client, model, str(to))
        if str(to) == champion.version:
            raise PromotionBlocked(f"rollback {model!r}: v{to} is already the champion")
        problems = gate_problems(dict(mv.tags))
        if NOT_PROMOTED in mv.tags:
            problems.append(f"it was never champion ({mv.tags[NOT_PROMOTED]})")
        if problems:
            raise PromotionBlocked(
                f"rollback {model!r} to v{to}: refused, its gates did not all pass: " + "; ".join(problems)
            )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        client.set_model_version_tag(model, champion.version, f"{REGISTRY_TAG}rolled_back_at", now)
        client.set_model_version_tag(model, champion.version, f"{REGISTRY_TAG}rolled_back_by", _tag_value(actor))
        client.set_model_version_tag(model, champion.version, f"{REGISTRY_TAG}rollback_reason", _tag_value(reason))
        client.set_model_version_tag(model, str(to), f"{REGISTRY_TAG}restored_at", now)
        _move_champion(client, model, str(to), champion.version, now)
        move = AliasMove(
            model, str(to), champion.version,
            f"version {to} is champion again (rolled back from version {champion.version} by {actor}: {reason})",
        )  # fmt: skip
        if on_moved is not None:
            on_moved(move)
    return move


def _move_champion(client, model: str, version: str, current: str | None, now: str) -> None:
    """Move ``champion`` from ``current`` to ``version`` (callers hold the model's lock), then read it back.

    The read-back catches a writer that does not take the lock (another machine on a shared server):
    MLflow itself has no compare-and-set on aliases.
    """
    if current:
        client.set_registered_model_alias(model, PREVIOUS_CHAMPION, current)
        client.set_model_version_tag(model, current, f"{REGISTRY_TAG}replaced_by", version)
        client.set_model_version_tag(model, current, f"{REGISTRY_TAG}replaced_at", now)
    client.set_registered_model_alias(model, CHAMPION, version)
    found = str(client.get_model_version_by_alias(model, CHAMPION).version)
    if found != version:
        raise PromotionBlocked(
            f"registry {model!r}: champion was set to v{version} but reads back as v{found}: another writer "
            "moved it at the same time without the registry lock. Check `ml-platform history` and the registry."
        )


def _model_version(client, model: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model, str(version))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise LookupError(f"model {model!r} has no registered version {version!r}") from error
        raise


def version_details(store: Store, model: str, version: str | None) -> dict[str, Any]:
    """A registered version with its tags and its training run, for ``ml-platform explain``."""
    client = store.client()
    if version is None:
        champion = current_champion(store, model)
        if champion is None:
            raise LookupError(f"model {model!r} has no champion yet: nothing has passed every gate")
        version = champion.version
    mv = client.get_model_version(model, version)
    aliases = list(getattr(mv, "aliases", []) or [])
    run = client.get_run(mv.run_id) if mv.run_id else None
    return {
        "version": str(mv.version),
        "aliases": aliases,
        "source": mv.source,
        "run_id": mv.run_id,
        "tags": dict(mv.tags),
        "run_params": dict(run.data.params) if run else {},
        "run_metrics": dict(run.data.metrics) if run else {},
        "run_tags": {k: v for k, v in (run.data.tags.items() if run else []) if not k.startswith("mlflow.log-model")},
    }


def _registered_model_exists(client, model: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model)
        return True
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return False
        raise


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:4900]  # MLflow caps tag values at 5,000 characters
