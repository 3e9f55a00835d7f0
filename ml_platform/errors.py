"""Every exception the platform raises on purpose, and the one rule that says which errors are worth a retry.

Two kinds of failure, handled differently everywhere (Dagster steps, the CLI, sensors): invalid evidence
(a broken contract, a gate that did not pass) is final and never retried; infrastructure (a server that
did not answer, a locked store) is retried with backoff and, when it persists, exits 3.
"""

from __future__ import annotations


class ContractViolation(ValueError):
    """Evidence that cannot be fixed by retrying: bad landing data, a broken contract, a bad spec."""


class PromotionBlocked(RuntimeError):
    """A candidate may not be registered or promoted: a gate failed, is missing, or is out of date."""


class SnapshotCorrupted(ContractViolation):
    """A stored snapshot no longer matches the hash recorded when it was written."""


class ArtifactTampered(ContractViolation):
    """A registered version's model files no longer match the hashes recorded when it was registered."""


class ArtifactUnverified(ContractViolation):
    """A registered version has no recorded artifact hashes (registered before they were recorded)."""


class RequestRefused(ContractViolation):
    """An online request the server will not score: its status (4xx) and the message naming the problem."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class ChampionMoved(PromotionBlocked):
    """The candidate was registered, but the champion it was compared with is no longer champion."""

    def __init__(self, message: str, version: str, champion: str | None):
        super().__init__(message)
        self.version = version
        self.champion = champion


class SnapshotWriteFailed(OSError):
    """The storage refused a snapshot: disk full, a file size limit, a read-only or missing folder.

    Nothing partial is left behind (see ``take_snapshot``); the message names the folder and the cause.
    """


TRANSIENT_MLFLOW_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED", "ABORTED"}
TRANSIENT_MARKERS = (
    "connection refused",
    "max retries exceeded",
    "database is locked",
    "timed out",
    "temporarily unavailable",
)


def is_transient(error: BaseException) -> bool:
    """Whether retrying could help: the network, a locked or busy store, a slow disk; not a bug or bad data."""
    if isinstance(error, (ContractViolation, PromotionBlocked)):
        return False
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if getattr(error, "error_code", None) in TRANSIENT_MLFLOW_CODES:
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"RequestException", "OperationalError", "ConnectTimeout", "ReadTimeout"}:
        return True
    return any(marker in str(error).lower() for marker in TRANSIENT_MARKERS)


class InfrastructureUnavailable(ConnectionError):
    """A store the step needs did not answer; the step's RetryPolicy retries it with backoff."""


class DeclarationError(ValueError):
    """A team's model declaration cannot be used: a bad field in its ``defs.yaml``, a model name two code
    locations declare, a code location in ``workspace.yaml`` that cannot be found. Raised before anything runs.
    """


class FigureRenderingFailed(RuntimeError):
    """The background process drawing a candidate's evidence figures failed; the step draws them itself."""
