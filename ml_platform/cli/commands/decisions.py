"""`ml-platform` sub-commands: decisions -- approve a challenger, roll back, read the history.

Each move of ``champion`` by a person is recorded in the decision ledger with who made it and why
(an approval also keeps the evidence that was shown), and mirrored as an observation of
``<model>/decisions`` in Dagster. MLflow keeps no alias history of its own; ``history`` reads the
ledger. Each command first reconciles the registry with the ledger (``stores.recovery.reconcile``):
a promotion a killed run left half done is finished or undone, and a ``champion`` or ``production``
moved by hand in the registry is recorded as an ``unrecorded-move`` -- which ``approve`` of that very
version confirms for ``champion``; ``production`` is moved back or released.
"""

from __future__ import annotations

import sys

from ml_platform.cli.exit_codes import ExitCode


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
    approve = commands.add_parser(
        "approve", help="show a challenger's evidence and make it champion (manual promotion)"
    )
    approve.add_argument("model")
    approve.add_argument("version")
    approve.add_argument("--by", default=None, help="who approves (default: the current user)")
    approve.add_argument("--note", default="", help="why, in a sentence, for the ledger")
    approve.set_defaults(handler=_approve)

    rollback = commands.add_parser("rollback", help="move champion back (default: to the previous champion)")
    rollback.add_argument("model")
    rollback.add_argument("--to", default=None, metavar="VERSION", help="the version to restore")
    rollback.add_argument("--reason", default="rolled back by hand", help="why, for the ledger")
    rollback.add_argument("--by", default=None, help="who rolls back (default: the current user)")
    rollback.set_defaults(handler=_rollback)

    history = commands.add_parser("history", help="every alias move (champion, staging, canary, production), and why")
    history.add_argument("model")
    history.add_argument("--all", action="store_true", help="every decision: retrain, no-op, held, rejected too")
    history.add_argument("--limit", type=int, default=None, help="only the latest N records")
    history.set_defaults(handler=_history)


def _context(model: str):
    from ml_platform.discovery import get_spec
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import Store

    spec = get_spec(model)
    paths = PlatformPaths.from_environment()
    return spec, paths, Store.from_paths(paths)


def _actor(given: str | None) -> str:
    import getpass

    return given or getpass.getuser()


def _reconciled(store, paths, model: str):
    """Reconcile the registry with the ledger, each new record shown in Dagster, and say what was found."""
    import dagster as dg

    from ml_platform.defs.decisions import runless_recorder
    from ml_platform.settings import ensure_dagster_home
    from ml_platform.stores.recovery import reconcile

    ensure_dagster_home(paths)
    with dg.DagsterInstance.get() as instance:
        found = reconcile(store, paths, model, runless_recorder(paths, instance), production=True)
    for record in found.recorded:
        print(f"reconciled: recorded #{record.id} ({record.decision}): {record.reason}")
    return found


def _record_move(paths, decision_for):
    """An ``on_moved`` for ``approve``/``rollback``: the ledger record, written under the registry lock."""
    recorded = []

    def on_moved(move) -> None:
        from ml_platform.stores.ledger import Ledger

        recorded.append(Ledger.for_home(paths.home).record(decision_for(move)))

    return on_moved, recorded


def _show(paths, recorded) -> None:
    """Mirror the records on ``<model>/decisions`` in Dagster and say where they are."""
    import dagster as dg

    from ml_platform.defs.decisions import observation

    with dg.DagsterInstance.get() as instance:
        for record in recorded:
            instance.report_runless_asset_event(observation(record))
            print(f"recorded in the decision ledger as #{record.id} ({record.decision})")


def _approve(args) -> int:
    from ml_platform.cli.explain import explain
    from ml_platform.errors import is_transient
    from ml_platform.stores.ledger import Decision
    from ml_platform.stores.recovery import confirm_move
    from ml_platform.stores.registry import approve

    spec, paths, store = _context(args.model)
    found = _reconciled(store, paths, spec.name)
    try:
        evidence = explain(spec.name, args.version, paths)
    except Exception as error:  # MLflow's own "no such version" error; a store that did not answer is not usage
        if is_transient(error):
            raise
        print(f"ml-platform: approve {spec.name!r} v{args.version}: {error}", file=sys.stderr)
        return ExitCode.USAGE
    print(evidence)
    print()
    actor = _actor(args.by)
    if found.moved_by_hand is not None and found.champion == str(args.version):
        confirmed = confirm_move(store, paths, spec.name, args.version, actor, args.note)
        print(confirmed.reason)
        _show(paths, [confirmed])
        return ExitCode.PASSED

    def decision(move) -> Decision:
        reason = f"approved by {actor}" + (f": {args.note}" if args.note else "") + f"; {move.note}"
        evidence_shown = {"previous_champion": move.replaced or "none", "evidence_shown": evidence}
        return Decision(
            spec.name, "promoted", "approval", reason, {}, evidence_shown, version=move.version, actor=actor
        )

    on_moved, recorded = _record_move(paths, decision)
    move = approve(store, spec.name, args.version, actor, args.note, on_moved)  # PromotionBlocked exits 1 (main)
    print(move.note)
    _show(paths, recorded)
    return ExitCode.PASSED


def _rollback(args) -> int:
    from ml_platform.stores.ledger import Decision
    from ml_platform.stores.registry import rollback

    spec, paths, store = _context(args.model)
    _reconciled(store, paths, spec.name)
    actor = _actor(args.by)

    def decision(move) -> Decision:
        return Decision(
            spec.name,
            "rolled-back",
            "rollback",
            f"{args.reason} (from v{move.replaced} to v{move.version}, by {actor})",
            {},
            {"rolled_back_from": move.replaced, "restored": move.version},
            version=move.version,
            actor=actor,
        )

    on_moved, recorded = _record_move(paths, decision)
    move = rollback(store, spec.name, actor, args.reason, to=args.to, on_moved=on_moved)  # PromotionBlocked exits 1
    print(move.note)
    _show(paths, recorded)
    return ExitCode.PASSED


def _history(args) -> int:
    from ml_platform.stores.ledger import Ledger
    from ml_platform.stores.recovery import UNRECORDED_MOVE
    from ml_platform.stores.release import ALIAS_CHANGES, alias_holders, format_alias_history

    spec, paths, store = _context(args.model)
    found = _reconciled(store, paths, spec.name)
    ledger = Ledger.for_home(paths.home)
    records = ledger.query(spec.name, None if args.all else (*ALIAS_CHANGES, UNRECORDED_MOVE), limit=args.limit)
    holders = {alias: "v" + v if v else "none" for alias, v in alias_holders(store, spec.name).items()}
    others = ", ".join(f"{alias} {v}" for alias, v in holders.items() if alias != "champion")
    print(f"{spec.name}: champion now {holders['champion']}; {others} (ledger {ledger.path})")
    if found.moved_by_hand is not None:
        print(
            f"  WARNING: champion was moved outside the platform (ledger #{found.moved_by_hand.id}); what follows "
            f"champion refuses it unless the spec accepts it: confirm it with `ml-platform approve {spec.name} "
            f"{found.champion}` or move it back with `ml-platform rollback {spec.name}`"
        )
    if found.production_moved_by_hand is not None:
        move = found.production_moved_by_hand
        print(
            f"  WARNING: production was moved outside the platform (ledger #{move.id}, to v{move.version}); what "
            f"follows production refuses it unless the spec accepts it: move it back to the version last released, "
            f"or release one with `ml-platform release {spec.name} start`"
        )
    if not records:
        print(
            "  no " + ("decisions recorded yet" if args.all else "champion changes recorded yet, nor other alias moves")
        )
        return ExitCode.PASSED
    print(format_alias_history(records))
    return ExitCode.PASSED
