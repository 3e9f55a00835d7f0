"""Releases in the registry: the ``canary``, ``production`` and ``previous-production`` aliases (platform-owned).

Each alias has one meaning (``ml_platform/keys.py``). ``production`` is what users are served; it only
ever takes

- the canary that the online release gate (or a person, with the gate's evidence) promoted, or
- on a model's first release, when nothing is in production yet, a version whose recorded gates all
  passed: with no production there is nothing to compare a canary with, so ``release start`` moves
  production directly and the ledger records it as a first release.

A release is one ``canary`` alias plus the tags the server reads on that version
(``ml_platform.canary_percent``, ``release_mode``, ``release_started_at``, ``release_id``). Every move
happens under the model's registry lock (``Store.lock``), and a verdict applies only while the canary
still carries the release id it was judged for: a release is promoted or rolled back, never both, and
never twice. A ``canary`` that ``release start`` did not put there (no release id and start time on
its version, or a verdict already on it: set by hand, MLflow has no alias permissions) gets no traffic
and cannot be promoted, only aborted (``canary_problem``). MLflow keeps no alias history (mlflow#2169),
so each move is also a ledger record whose evidence holds ``moves`` (alias -> [from, to]);
``alias_history`` reads them back.

Also here: the online inference log's reader for the gate (files
``<home>/inference/<model>/online-<UTC yyyymmddTHHMMSS>-<pid>-<seq>.parquet``, each written once).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ml_platform.errors import PromotionBlocked
from ml_platform.keys import (
    CANARY,
    CANARY_PERCENT_TAG,
    CHAMPION,
    PREVIOUS_CHAMPION,
    PREVIOUS_PRODUCTION,
    PRODUCTION,
    REGISTRY_TAG,
    RELEASE_ID_TAG,
    RELEASE_MODE_TAG,
    RELEASE_OUTCOME_TAG,
    RELEASE_STARTED_AT_TAG,
    STAGING,
)
from ml_platform.stores.registry import (
    AliasMove,
    Champion,
    Store,
    _model_version,
    _tag_value,
    alias_holder,
    gate_problems,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml_platform.rules.spec import ModelSpec
    from ml_platform.stores.ledger import Decision

RELEASE_TRIGGER = "release"
ONLINE_LOG = re.compile(r"^online-(\d{8}T\d{6})-\d+-\d+\.parquet$")
ALIAS_CHANGES = ("promoted", "rolled-back", "canary-started")
ALIAS_ORDER = (PRODUCTION, CANARY, PREVIOUS_PRODUCTION, STAGING, "previous-staging", CHAMPION, PREVIOUS_CHAMPION)
Outcome = Literal["promote", "rollback"]


@dataclass(frozen=True)
class ActiveRelease:
    """The release in progress: the canary version and the tags ``release start`` wrote on it."""

    model: str
    version: str
    release_id: str
    started_at: str
    percent: float
    mode: Literal["canary", "shadow"]
    production: str | None
    problem: str | None = None  # why this canary is no release of the platform's (``canary_problem``)


@dataclass(frozen=True)
class ReleaseMove:
    """What a release command or verdict did to the aliases, for the ledger and the terminal."""

    model: str
    version: str
    kind: Literal["first-release", "canary-started", "promoted", "rolled-back", "no-op"]
    note: str
    release_id: str | None = None
    moves: dict[str, list[str | None]] = field(default_factory=dict)


def alias_version(store: Store, model: str, alias: str) -> str | None:
    """The version an alias points at, or ``None`` when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(store.client().get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def deployed_version(store: Store, spec: ModelSpec) -> Champion | None:
    """The version that serving and batch scoring follow: ``spec.release.deployed_alias``'s holder."""
    return alias_holder(store, spec.name, spec.release.deployed_alias)


def active_release(store: Store, model: str) -> ActiveRelease | None:
    """The release in progress (the ``canary`` alias and its tags), if any."""
    version = alias_version(store, model, CANARY)
    if version is None:
        return None
    tags = dict(store.client().get_model_version(model, version).tags)
    mode = tags.get(RELEASE_MODE_TAG, "canary")
    return ActiveRelease(
        model,
        version,
        tags.get(RELEASE_ID_TAG, ""),
        tags.get(RELEASE_STARTED_AT_TAG, ""),
        float(tags.get(CANARY_PERCENT_TAG, "0") or 0),
        "shadow" if mode == "shadow" else "canary",
        alias_version(store, model, PRODUCTION),
        canary_problem(model, version, tags),
    )


def canary_problem(model: str, version: str, tags: dict[str, str]) -> str | None:
    """Why the version under ``canary`` gets no traffic and cannot be promoted, or ``None``.

    ``release start`` checks the version's gates, then tags it with a release id and start time, then
    moves ``canary``; a verdict tags its outcome and removes the alias. Those tags are the witness, as
    ``production_at`` is for ``production``: a canary without them, or with an outcome already, was set
    outside the platform -- by anyone with edit rights, onto any version -- and would otherwise take a
    share of real traffic and be judged for promotion. ``release.accept_manual_alias_moves`` does not
    cover it: a canary is started by ``release start`` or not at all.
    """
    ways_out = f"Abort it (`ml-platform release {model} abort`), then `ml-platform release {model} start` a version."
    if not tags.get(RELEASE_ID_TAG) or not tags.get(RELEASE_STARTED_AT_TAG):
        return (
            f"'canary' points at v{version}, which `ml-platform release start` did not start: it carries no "
            f"{RELEASE_ID_TAG} and {RELEASE_STARTED_AT_TAG} tags (set outside the platform). {ways_out}"
        )
    if tags.get(RELEASE_OUTCOME_TAG):
        return (
            f"'canary' points at v{version}, whose release {tags[RELEASE_ID_TAG][:12]} was decided already "
            f"({RELEASE_OUTCOME_TAG} {tags[RELEASE_OUTCOME_TAG]}): the alias was set back outside the platform. "
            + ways_out
        )
    return None


def start_release(
    store: Store, spec: ModelSpec, version: str | None, percent: float | None, shadow: bool, actor: str
) -> ReleaseMove:
    """Start a release of ``version`` (default: the champion), or refuse with the reason.

    Refused: a version whose recorded gates did not all pass, and a release while another is in
    progress. With nothing in production yet, the version becomes production at once (first release).
    """
    model = spec.name
    percent = spec.release.canary_percent if percent is None else float(percent)
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"release {model!r}: --canary {percent:g} is not a share of traffic in (0, 100]")
    version = version or alias_version(store, model, CHAMPION)
    if version is None:
        raise PromotionBlocked(f"release {model!r}: there is no champion to release: nothing has passed every gate")
    client = store.client()
    problems = gate_problems(dict(_model_version(client, model, str(version)).tags))
    if problems:
        raise PromotionBlocked(
            f"release {model!r} v{version}: refused, its recorded gates did not all pass: " + "; ".join(problems)
        )
    with store.lock(model):
        active = active_release(store, model)
        if active is not None:
            raise PromotionBlocked(
                f"release {model!r} v{version}: refused, release {active.release_id[:12]} of canary v{active.version} "
                f"has been in progress since {active.started_at}; let its gate decide, or run `ml-platform release "
                f"{model} promote` or `abort` first"
            )
        production = alias_version(store, model, PRODUCTION)
        now = _now()
        release_id = uuid.uuid4().hex
        if production == str(version):
            return ReleaseMove(model, str(version), "no-op", f"no-op: version {version} is already production")
        if production is None:
            _tag(client, model, str(version), {"first_release_at": now, "release_id": release_id, "production_at": now})
            client.set_registered_model_alias(model, PRODUCTION, str(version))
            _read_back(store, model, PRODUCTION, str(version))
            note = f"first release: version {version} is production (nothing was in production to canary against)"
            return ReleaseMove(model, str(version), "first-release", note, release_id, {PRODUCTION: [None, version]})
        mode = "shadow" if shadow else "canary"
        if RELEASE_OUTCOME_TAG in dict(_model_version(client, model, str(version)).tags):
            client.delete_model_version_tag(model, str(version), RELEASE_OUTCOME_TAG)  # an earlier release's verdict
        _tag(
            client,
            model,
            str(version),
            {
                "canary_percent": f"{percent:g}",
                "release_mode": mode,
                "release_started_at": now,
                "release_id": release_id,
            },
        )
        client.set_registered_model_alias(model, CANARY, str(version))
        _read_back(store, model, CANARY, str(version))
    share = (
        f"shadow-scores {spec.release.shadow_sample:.0%} of requests" if shadow else f"takes {percent:g}% of traffic"
    )
    note = f"version {version} is canary and {share} beside production v{production}"
    return ReleaseMove(model, str(version), "canary-started", note, release_id, {CANARY: [None, str(version)]})


def conclude_release(store: Store, model: str, release_id: str, outcome: Outcome, reason: str) -> ReleaseMove:
    """Promote the canary to production or roll it back: exactly one, and only while the release is on.

    Raises:
        PromotionBlocked: the release is no longer in progress (decided already, by the gate or a person).
    """
    client = store.client()
    with store.lock(model):
        active = active_release(store, model)
        if active is None or active.release_id != release_id:
            now_on = f"canary v{active.version} of release {active.release_id[:12]}" if active else "no release"
            raise PromotionBlocked(
                f"release {model!r} {release_id[:12]}: no longer in progress ({now_on} is); it was decided already"
            )
        if outcome == "promote" and active.problem is not None:
            raise PromotionBlocked(f"release {model!r} promote: refused, {active.problem}")
        now, version, production = _now(), active.version, active.production
        if outcome == "promote":
            if production and production != version:
                client.set_registered_model_alias(model, PREVIOUS_PRODUCTION, production)
                _tag(client, model, production, {"replaced_in_production_by": version, "replaced_at": now})
            _tag(
                client,
                model,
                version,
                {"production_at": now, "release_outcome": "promoted", "previous_production": production or "none"},
            )
            client.set_registered_model_alias(model, PRODUCTION, version)
            _read_back(store, model, PRODUCTION, version)
            client.delete_registered_model_alias(model, CANARY)
            moves = {PRODUCTION: [production, version], CANARY: [version, None]}
            if production and production != version:
                moves[PREVIOUS_PRODUCTION] = [None, production]
            note = f"version {version} is production" + (
                f"; v{production} is previous-production" if production else ""
            )
            return ReleaseMove(model, version, "promoted", note, release_id, moves)
        _tag(
            client, model, version, {"release_outcome": "rolled-back", "rolled_back_at": now, "rollback_reason": reason}
        )
        client.delete_registered_model_alias(model, CANARY)
    note = f"canary v{version} rolled back; production stays " + (f"v{production}" if production else "unset")
    return ReleaseMove(model, version, "rolled-back", note, release_id, {CANARY: [version, None]})


def rollback_production(
    store: Store, model: str, actor: str, reason: str, on_moved: Callable[[AliasMove], None] | None = None
) -> AliasMove:
    """Move ``production`` back to ``previous-production``, which takes the version rolled back from.

    What the performance monitor does when the version users are served dropped and the one it
    replaced did measurably better. The target is tagged ``production_at`` like every version the
    platform puts in production; ``on_moved`` records the move under the lock, as in ``registry.rollback``.

    Raises:
        LookupError: there is no production or no previous-production.
        PromotionBlocked: the previous version's gates did not all pass, or it is production already.
    """
    client = store.client()
    with store.lock(model):
        current, to = alias_version(store, model, PRODUCTION), alias_version(store, model, PREVIOUS_PRODUCTION)
        if current is None or to is None:
            raise LookupError(f"rollback {model!r} {PRODUCTION}: there is no {PRODUCTION} or no {PREVIOUS_PRODUCTION}")
        if to == current:
            raise PromotionBlocked(f"rollback {model!r}: v{to} is already {PRODUCTION}")
        problems = gate_problems(dict(_model_version(client, model, to).tags))
        if problems:
            raise PromotionBlocked(f"rollback {model!r} {PRODUCTION} to v{to}: refused, its gates did not all pass: "
                                   + "; ".join(problems))  # fmt: skip
        now = _now()
        _tag(client, model, current, {"rolled_back_at": now, "rolled_back_by": actor, "rollback_reason": reason})
        _tag(client, model, to, {"production_at": now, "production_restored_at": now})
        client.set_registered_model_alias(model, PREVIOUS_PRODUCTION, current)
        client.set_registered_model_alias(model, PRODUCTION, to)
        _read_back(store, model, PRODUCTION, to)
        move = AliasMove(model, to, current, f"version {to} is {PRODUCTION} again (rolled back from version "
                                              f"{current} by {actor}: {reason})")  # fmt: skip
        if on_moved is not None:
            on_moved(move)
    return move


def _tag(client, model: str, version: str, values: dict[str, Any]) -> None:
    for name, value in values.items():
        client.set_model_version_tag(model, version, f"{REGISTRY_TAG}{name}", _tag_value(value))


def _read_back(store: Store, model: str, alias: str, version: str) -> None:
    """MLflow has no compare-and-set on aliases: a writer without the lock shows up here."""
    found = alias_version(store, model, alias)
    if found != version:
        raise PromotionBlocked(
            f"registry {model!r}: {alias} was set to v{version} but reads back as v{found}: another writer moved it "
            "at the same time without the registry lock. Check `ml-platform history` and the registry."
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_online_log(folder: Path, since: datetime | None = None) -> pd.DataFrame:
    """The online inference log's rows, from the files written at or after ``since`` (UTC).

    A file's name carries the time it was written, after every row in it was scored, so older files
    cannot hold a row of the window and are not read. Hidden partial files are never read.
    """
    import pandas as pd

    floor = since.astimezone(UTC).strftime("%Y%m%dT%H%M%S") if since else ""
    files = sorted(
        path
        for path in folder.glob("online-*.parquet")
        if (found := ONLINE_LOG.match(path.name)) and found.group(1) >= floor
    )
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def alias_moves(record: Decision) -> dict[str, list[str | None]]:
    """Which aliases a ledger record moved, alias -> [from, to].

    Release and staging records carry their moves; champion records of the gates, approvals and
    rollbacks say them in their own evidence fields.
    """
    if "moves" in record.evidence:
        return dict(record.evidence["moves"])
    evidence, version = record.evidence, record.version
    if record.decision == "promoted" and record.trigger in ("gates", "approval"):
        previous = evidence.get("previous_champion")
        moves: dict[str, list[str | None]] = {CHAMPION: [None if previous in (None, "none") else previous, version]}
        if previous not in (None, "none"):
            moves[PREVIOUS_CHAMPION] = [None, previous]
        return moves
    if record.decision == "rolled-back" and "rolled_back_from" in evidence:
        return {
            CHAMPION: [evidence["rolled_back_from"], version],
            PREVIOUS_CHAMPION: [None, evidence["rolled_back_from"]],
        }
    return {}


def format_alias_history(records: Iterable[Decision]) -> str:
    """Ledger records as aligned lines: time, decision, version, the aliases moved, trigger and actor, reason."""
    lines = []
    for record in records:
        moves = alias_moves(record)
        ordered = sorted(moves.items(), key=lambda item: ALIAS_ORDER.index(item[0]) if item[0] in ALIAS_ORDER else 99)
        moved = ", ".join(f"{alias} {_v(old)}->{_v(new)}" for alias, (old, new) in ordered) or "-"
        who = f" by {record.actor}" if record.actor else ""
        version = f"v{record.version}" if record.version else "-"
        head = f"{record.recorded_at}  {record.decision:<14} {version:<5} {moved:<40}"
        lines.append(f"{head} [{record.trigger}{who}]  {record.reason}")
    return "\n".join(lines)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def alias_holders(store: Store, model: str) -> dict[str, str | None]:
    """Every release-related alias and the version that holds it now."""
    return {alias: alias_version(store, model, alias) for alias in ALIAS_ORDER if alias != "previous-staging"}
