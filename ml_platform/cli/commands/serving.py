"""`ml-platform serve` and `ml-platform record-manifest`: the online server (``ml_platform.serving``) (platform-owned).

Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse

from ml_platform.cli.exit_codes import ExitCode


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
    serve = commands.add_parser(
        "serve",
        help="serve models online over HTTP: what the deployed alias points at, verified, following alias moves",
    )
    serve.add_argument("models", nargs="*", metavar="MODEL", help="models to serve (default: every declared model)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (default 1 MiB)")
    serve.add_argument("--max-rows", type=int, default=None, help="most rows in one request (default 1,000)")
    serve.add_argument("--poll-seconds", type=float, default=None, help="override the spec's release.poll_seconds")
    serve.add_argument("--batch-max-rows", type=int, default=None, help="override release.batch_max_rows")
    serve.add_argument("--batch-wait-ms", type=float, default=None, help="override release.batch_wait_ms")
    serve.set_defaults(handler=_serve)

    record = commands.add_parser(
        "record-manifest",
        help="record the artifact hashes of a version registered before they were recorded (trusts today's files)",
    )
    record.add_argument("model")
    record.add_argument("version")
    record.set_defaults(handler=_record_manifest)


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ml_platform.serving.server import serve
    from ml_platform.serving.settings import ServerLimits

    limits = ServerLimits()
    if args.max_body_bytes is not None:
        limits = replace(limits, max_body_bytes=args.max_body_bytes)
    if args.max_rows is not None:
        limits = replace(limits, max_rows=args.max_rows)
    serve(
        args.models,
        args.host,
        args.port,
        limits,
        poll_seconds=args.poll_seconds,
        batch_max_rows=args.batch_max_rows,
        batch_wait_ms=args.batch_wait_ms,
    )
    return ExitCode.PASSED


def _record_manifest(args: argparse.Namespace) -> int:
    from ml_platform.discovery import get_spec
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.artifacts import record_manifest
    from ml_platform.stores.registry import Store

    get_spec(args.model)
    paths = PlatformPaths.from_environment()
    manifest = record_manifest(
        Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root), args.model, args.version
    )
    print(f"{args.model} v{args.version}: recorded the sha256 of {len(manifest)} files: {sorted(manifest)}")
    return ExitCode.PASSED
