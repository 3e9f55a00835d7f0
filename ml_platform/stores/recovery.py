"""Keeping the registry and the decision ledger in agreement (platform-owned; no Dagster here).

Two things can make them disagree, and ``reconcile`` repairs or records both:

1. **A promotion a process died in the middle of.** The registry carries it out from its promotion
   intent (``registry.settle_intents``): finished if the version's gates all passed and the champion
   is still the one it was compared with, undone otherwise; its ledger record is written once.
2. **An alias moved outside the platform.** Anyone with edit rights on a registered model can move
   ``champion`` by hand (MLflow has no alias permissions and keeps no history of moves, mlflow#2169).
   The ledger knows every move of ``champion`` the platform made (the records whose alias moves,
   ``stores.release.alias_moves``, include it), so a champion that is not where the latest of them put
   it was moved by someone else (where this home's
   ledger has no champion change of the model yet, the champion's own registry tags are the witness,
   see ``_disagree``). That is recorded
   once as an ``unrecorded-move`` naming the alias, both versions and when it was noticed; and what
   follows ``champion`` refuses such a champion (``followable_version``) unless the spec says
   ``release.accept_manual_alias_moves``, or a person confirms the move (``confirm_move``) or moves it
   back. ``production`` moves only through releases (and the performance monitor's rollback): a
   ``production`` that is not where the ledger's latest production move put it (where the ledger has
   none, a holder without the ``production_at`` tag those moves write) was moved by hand too; it is
   recorded the same way where production matters (``reconcile(..., production=True)``: batch scoring
   that follows it, ``history``, ``approve``, ``rollback``), and what follows ``production`` refuses it
   (``manual_move``). Every hand move is recorded, a move back by hand too; what is followed is judged
   against the platform's own last move of the alias, so moving it back where the platform put it is
   enough to undo a hand move.

``manual_move`` only reads (the registry, and the ledger where the home has one): the online server,
which may run where the home is read-only, applies the same rule as batch scoring without recording.

``reconcile`` is cheap when nothing is wrong (one registry query for pending intents, one alias
lookup, one ledger query), so it runs at the start of every registry step, of every batch scoring,
of every retraining trigger's tick and of ``ml-platform history``/``approve``/``rollback``; a
fault-injection campaign can call it after each run to check that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ml_platform.errors import PromotionBlocked
from ml_platform.keys import CHAMPION, PRODUCTION, REGISTRY_TAG
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import CHAMPION_CHANGES, Decision, Ledger
from ml_platform.stores.registry import (
    NOT_PROMOTED,
    Champion,
    Recorder,
    Registration,
    Store,
    alias_holder,
    gate_problems,
    pending_intents,
    settle_intents,
)
from ml_platform.stores.release import alias_moves, deployed_version

UNRECORDED_MOVE = "unrecorded-move"
# the tags a version carries when the platform moved the alias onto it: the witness where the ledger has no move
WITNESS_TAGS = {CHAMPION: ("promoted_at", "approved_at", "restored_at"), PRODUCTION: ("production_at",)}


@dataclass(frozen=True)
class Reconciliation:
    """What ``reconcile`` found and did for one model.

    Attributes:
        current: the version ``champion`` points at, with its tags, or ``None``.
        settled: interrupted promotions carried out now, by version (finished or undone).
        moved_by_hand: the ledger's ``unrecorded-move`` record that put the current champion where it
            is, when no move of the platform did (recorded now or on an earlier reconciliation).
        recorded: the records this reconciliation added to the ledger.
        production_moved_by_hand: as ``moved_by_hand``, for ``production`` (when asked for).
    """

    model: str
    current: Champion | None
    settled: dict[str, Registration] = field(default_factory=dict)
    moved_by_hand: Decision | None = None
    recorded: list[Decision] = field(default_factory=list)
    production_moved_by_hand: Decision | None = None

    @property
    def champion(self) -> str | None:
        return self.current.version if self.current else None

    @property
    def agrees(self) -> bool:
        """Whether the ledger's latest champion change is one the platform made and names the champion."""
        return self.moved_by_hand is None


def ledger_recorder(paths: PlatformPaths) -> Recorder:
    """Records in the platform home's ledger, once per key (no Dagster observation: see defs/decisions.py)."""
    ledger = Ledger.for_home(paths.home)
    return ledger.record_once


def reconcile(
    store: Store, paths: PlatformPaths, model: str, record: Recorder | None = None, *, production: bool = False
) -> Reconciliation:
    """Finish or undo interrupted promotions, then record a champion the platform did not put there.

    Args:
        record: how a decision is recorded (the ledger, and an observation in Dagster); by default the
            platform home's ledger alone.
        production: also record a ``production`` moved outside the platform (one registry lookup more,
            so only where production matters: batch scoring that follows it, ``history``, ``approve``,
            ``rollback``).
    """
    record = record or ledger_recorder(paths)
    added: list[Decision] = []

    def keep(decision: Decision, key: str) -> Decision | None:
        recorded = record(decision, key)
        if recorded is not None:
            added.append(recorded)
        return recorded

    settled: dict[str, Registration] = {}
    if pending_intents(store, model):
        with store.lock(model):
            settled = settle_intents(store, model, keep)
    ledger = Ledger.for_home(paths.home)
    current, moved = _notice(store, ledger, model, CHAMPION, keep)
    production_moved = _notice(store, ledger, model, PRODUCTION, keep)[1] if production else None
    return Reconciliation(model, current, settled, moved, added, production_moved)


def _notice(store: Store, ledger: Ledger, model: str, alias: str, keep) -> tuple[Champion | None, Decision | None]:
    """``alias``'s holder, and the ledger's ``unrecorded-move`` record that put it there when no move of the
    platform did (a move not recorded yet is recorded now, once: a move back by hand is recorded too)."""
    holder, records = alias_holder(store, model, alias), ledger.query(model, CHAMPION_CHANGES)
    last = last_alias_move(records, alias)
    if _disagree(holder, last, alias) and not _record_in_flight(holder, last, alias):
        with store.lock(model):  # a move of the platform in progress finishes, with its record, first
            holder, records = alias_holder(store, model, alias), ledger.query(model, CHAMPION_CHANGES)
            last = last_alias_move(records, alias)
            if _disagree(holder, last, alias) and not _record_in_flight(holder, last, alias):
                version = _version(holder)
                keep(_unrecorded_move(model, alias, last, version), _move_key(model, alias, last, version))
                records = ledger.query(model, CHAMPION_CHANGES)  # with the record just made (or another's)
    return holder, _hand_move(records, alias, holder)


def _hand_move(records: list[Decision], alias: str, holder: Champion | None) -> Decision | None:
    """The ``unrecorded-move`` that put ``holder`` in ``alias``, unless the platform's own last move of the
    alias names it too (it was moved back by hand, or a person confirmed it): that holder is followed."""
    if holder is None:
        return None
    platform = last_alias_move([r for r in records if r.decision != UNRECORDED_MOVE], alias)
    if not _disagree(holder, platform, alias):
        return None
    last = last_alias_move(records, alias)
    if last is not None and last.decision == UNRECORDED_MOVE and last.version == holder.version:
        return last
    return None


def last_champion_move(ledger: Ledger, model: str) -> Decision | None:
    """The ledger's latest record that moved ``champion`` (a release's ``promoted`` moves ``production``)."""
    return last_alias_move(ledger.query(model, CHAMPION_CHANGES), CHAMPION)


def last_alias_move(records: Iterable[Decision], alias: str) -> Decision | None:
    """The latest of ``records`` (in ledger order) that moved ``alias``."""
    for record in reversed(list(records)):
        if alias in alias_moves(record):
            return record
    return None


def manual_move(paths: PlatformPaths | None, model: str, release, holder: Champion | None) -> str | None:
    """Why ``release.deployed_alias``'s ``holder`` must not be followed (moved outside the platform), or ``None``.

    ``release`` is the model's ``ModelSpec.release`` (as the server resolved it). Reads only: the ledger
    of ``paths``' home where there is one (a server on Kubernetes has none; the registry's tags witness
    then), and never records. ``None`` where the spec accepts such moves, or where nothing holds the alias.
    """
    alias = release.deployed_alias
    if holder is None or release.accept_manual_alias_moves or alias not in WITNESS_TAGS:
        return None
    ledger = Ledger.for_home(paths.home) if paths is not None else None
    records = ledger.query(model, CHAMPION_CHANGES) if ledger is not None and ledger.path.exists() else []
    platform = last_alias_move([r for r in records if r.decision != UNRECORDED_MOVE], alias)
    if not _disagree(holder, platform, alias) or _record_in_flight(holder, platform, alias):
        return None
    recorded = _hand_move(records, alias, holder)
    back_to = alias_moves(platform)[alias][1] if platform is not None else None
    if recorded is not None:
        return f"{recorded.reason} (ledger #{recorded.id}). " + _ways_out(model, alias, back_to)
    if platform is None:
        witness = " or ".join(f"{REGISTRY_TAG}{tag}" for tag in WITNESS_TAGS[alias])
        found = f"the ledger records no {alias} move and v{holder.version} carries no {witness} tag"
        return f"'{alias}' points at v{holder.version}, put there outside the platform: {found}. " + _ways_out(
            model, alias, None
        )
    found = (
        f"the ledger's last {alias} change (#{platform.id}, {platform.decision} at {platform.recorded_at}) names "
        f"v{back_to}"
    )
    return f"'{alias}' points at v{holder.version}, put there outside the platform: {found}. " + _ways_out(
        model, alias, back_to
    )


def _record_in_flight(holder: Champion, last: Decision | None, alias: str) -> bool:
    """Whether a release put ``holder`` in production after the ledger's last production change.

    Release commands move ``production`` under the registry lock and record the move just after it,
    having tagged the version ``production_at`` first: a holder tagged no earlier than the last record
    (compared to the second, the tag's precision) is such a move whose record is on its way.
    """
    if alias != PRODUCTION or last is None:
        return False
    try:
        tagged = datetime.fromisoformat(holder.tags[f"{REGISTRY_TAG}production_at"])
        recorded = datetime.fromisoformat(last.recorded_at).replace(microsecond=0)
    except (KeyError, TypeError, ValueError):
        return False
    return tagged >= recorded


def _ways_out(model: str, alias: str, back_to: str | None) -> str:
    accept = "or set release.accept_manual_alias_moves: true in the spec"
    if alias == CHAMPION:
        return (
            f"Move it back (`ml-platform rollback {model}" + (f" --to {back_to}`" if back_to else "`")
            + f"), confirm it after reading its evidence (`ml-platform approve {model} <version>`), {accept}."
        )  # fmt: skip
    where = f"v{back_to}" if back_to and back_to != "none" else "the version last released"
    return f"Move {alias} back to {where}, release a version through `ml-platform release {model} start`, {accept}."


def followable_version(store: Store, paths: PlatformPaths, spec, asset: str, record: Recorder | None = None):
    """The version batch scoring (and serving) may load: ``spec.release.deployed_alias``'s, after ``reconcile``.

    Either deployed alias moved outside the platform is refused unless the spec accepts such moves, and
    recorded in the ledger once (``reconcile``); the online server, which may have no home, only refuses
    (``manual_move``).

    Raises:
        PromotionBlocked: the deployed alias was moved outside the platform and
            ``release.accept_manual_alias_moves`` is off; the message names the move and the ways out.
    """
    if spec.release.deployed_alias == CHAMPION:
        return followable_champion(store, paths, spec, asset, record)
    reconcile(store, paths, spec.name, record, production=True)  # hand moves of either alias are recorded
    holder = deployed_version(store, spec)
    why = manual_move(paths, spec.name, spec.release, holder)
    if why is not None:
        raise PromotionBlocked(f"{asset} {spec.name!r}: refuses to follow {spec.release.deployed_alias} "
                               f"v{holder.version}: {why}")  # fmt: skip
    return holder


def followable_champion(store: Store, paths: PlatformPaths, spec, asset: str, record: Recorder | None = None):
    """The champion that what follows ``champion`` may load, after ``reconcile``; ``None`` when there is none.

    Raises:
        PromotionBlocked: ``champion`` was moved outside the platform and the spec does not accept such
            moves (``release.accept_manual_alias_moves``); the message names the move and the ways out.
    """
    found = reconcile(store, paths, spec.name, record)
    move = found.moved_by_hand
    if move is not None and not spec.release.accept_manual_alias_moves:
        raise PromotionBlocked(
            f"{asset} {spec.name!r}: refuses to follow champion v{move.version}: {move.reason} No gate result of "
            f"the platform's put it there. Move it back (`ml-platform rollback {spec.name} --to "
            f"{move.evidence.get('from_version')}`), confirm it after reading its evidence (`ml-platform approve "
            f"{spec.name} {move.version}`), or set release.accept_manual_alias_moves: true in the spec."
        )
    return found.current


def confirm_move(store: Store, paths: PlatformPaths, model: str, version: str, actor: str, note: str,
                 record: Recorder | None = None) -> Decision:  # fmt: skip
    """Record a person's confirmation of a champion moved outside the platform, as a ``promoted`` approval.

    The alias stays where it is; what changes is that the ledger now says who vouched for it, so
    scoring and serving follow it again. Refused for a version whose gates did not all pass.

    Raises:
        PromotionBlocked: the champion is not ``version`` by an unrecorded move, or its gates did not pass.
    """
    found = reconcile(store, paths, model, record)
    move = found.moved_by_hand
    if move is None or move.version != str(version):
        raise PromotionBlocked(
            f"approve {model!r} v{version}: it is already the champion"
            + ("" if move is None else f" (the last move outside the platform was to v{move.version})")
        )
    champion = found.current
    problems = gate_problems(champion.tags) + (
        [f"it was left aside ({champion.tags[NOT_PROMOTED]})"] if NOT_PROMOTED in champion.tags else []
    )
    if problems:
        raise PromotionBlocked(
            f"approve {model!r} v{version}: refused to confirm the move made outside the platform (ledger "
            f"#{move.id}), its gates did not all pass: " + "; ".join(problems)
        )
    reason = (
        f"confirmed by {actor}" + (f": {note}" if note else "") + f"; v{version} stays champion, where it was moved "
        f"outside the platform (ledger #{move.id}, from v{move.evidence.get('from_version')})"
    )
    decision = Decision(model, "promoted", "approval", reason, {},
                        {"previous_champion": move.evidence.get("from_version"), "confirms": move.id},
                        version=str(version), actor=actor)  # fmt: skip
    return (record or ledger_recorder(paths))(decision, f"confirm:{model}:{move.id}") or decision


def _version(champion: Champion | None) -> str | None:
    return champion.version if champion else None


def _disagree(current: Champion | None, last: Decision | None, alias: str = CHAMPION) -> bool:
    """Whether ``alias`` is not where the platform last put it.

    A ledger with no change of the alias for the model has not seen its history (a home created after
    the champion: a CI job's, a restored backup's, a server's without the home); there the registry's
    own tags witness instead (``WITNESS_TAGS``): a version the platform moved ``champion`` to carries
    ``promoted_at``, ``approved_at`` or ``restored_at`` (and one it left aside ``not_promoted``); one it
    put in ``production`` carries ``production_at``.
    """
    if last is not None:
        return _version(current) != alias_moves(last)[alias][1]
    if current is None:
        return False
    moved_here = any(f"{REGISTRY_TAG}{tag}" in current.tags for tag in WITNESS_TAGS[alias])
    return not moved_here or (alias == CHAMPION and NOT_PROMOTED in current.tags)


def _move_key(model: str, alias: str, last: Decision | None, version: str | None) -> str:
    """One record per move noticed: the same move seen by two reconcilers is recorded once."""
    where = "" if alias == CHAMPION else f"{alias}:"  # champion's keys predate the other aliases'
    return f"{UNRECORDED_MOVE}:{model}:{where}after#{last.id if last else 0}:to:{version or 'none'}"


def _unrecorded_move(model: str, alias: str, last: Decision | None, version: str | None) -> Decision:
    noticed = datetime.now(UTC).isoformat(timespec="seconds")
    before = alias_moves(last)[alias][1] if last is not None else None
    was = f"v{before}" if before else "(none)"
    now = f"v{version}" if version else "(no version: the alias was removed)"
    since = f"ledger #{last.id}, {last.decision} at {last.recorded_at}" if last else f"the ledger records no {alias}"
    reason = (
        f"'{alias}' was moved outside the platform: from {was} to {now}, noticed at {noticed}; the ledger's "
        f"last {alias} change ({since}) names {was}."
    )
    evidence = {
        "alias": alias,
        "from_version": before or "none",
        "to_version": version or "none",
        "noticed_at": noticed,
        "last_recorded_change": last.id if last else None,
        "moves": {alias: [before, version]},
    }
    return Decision(model, UNRECORDED_MOVE, "reconcile", reason, {}, evidence, version=version)
