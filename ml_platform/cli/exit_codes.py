"""What an ``ml-platform`` exit code means, and which code an error earns (platform-owned).

One enum and one mapping serve every command (``run``, ``demo``, the CI stages, the decisions), so a
workflow can branch on the code alone: 0 passed; 1 the evidence refused it (a gate failed, a contract
was broken, a promotion was blocked: retrying changes nothing); 2 usage or configuration error;
3 infrastructure error worth a retry. Nothing heavy is imported here: ``ml-platform --help`` loads it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ExitCode(IntEnum):
    PASSED = 0
    GATE_FAILED = 1
    USAGE = 2
    INFRASTRUCTURE = 3

    @property
    def status(self) -> str:
        """The word a ``--json`` report carries for this code."""
        return _STATUS[self]


_STATUS = {
    ExitCode.PASSED: "passed",
    ExitCode.GATE_FAILED: "gate_failed",
    ExitCode.USAGE: "usage_error",
    ExitCode.INFRASTRUCTURE: "infrastructure_error",
}


class Verdict(NamedTuple):
    code: ExitCode
    message: str
    crashed: bool = False  # fits no kind: a bug, whose stack trace is worth showing


def classify(error: BaseException) -> Verdict:
    """The exit code an exception means, and the message to show for it (passwords masked).

    ``ContractViolation`` is a ``ValueError`` but it is evidence, not a typing mistake: it exits 1
    like a failed gate. A crash that fits no kind exits 3 (retry once, then report it): exiting 1
    would tell a workflow that a gate refused the model.
    """
    from ml_platform.errors import ContractViolation, PromotionBlocked, is_transient
    from ml_platform.settings import redact_secrets, servers_named

    described = redact_secrets(f"{type(error).__name__}: {error}".strip())  # clients echo URLs with passwords
    if isinstance(error, (ContractViolation, PromotionBlocked)):
        return Verdict(ExitCode.GATE_FAILED, redact_secrets(str(error)))
    if is_transient(error):
        servers = servers_named()
        return Verdict(ExitCode.INFRASTRUCTURE, f"infrastructure error, worth a retry: {described}"
                       + (f" -- {servers}" if servers else ""))  # fmt: skip
    if isinstance(error, (ValueError, LookupError, ImportError)):
        shown = described if isinstance(error, (ImportError, KeyError)) else redact_secrets(str(error))
        return Verdict(ExitCode.USAGE, f"error: {shown}")
    crashed = f"crashed (not a gate result; retry once, then report it): {described}"
    return Verdict(ExitCode.INFRASTRUCTURE, crashed, crashed=True)
