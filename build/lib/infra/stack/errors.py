"""Errors raised by the local stack; every message is one actionable line."""

from __future__ import annotations


class StackError(RuntimeError):
    """A stack operation failed; ``str(err)`` says what happened and what to do."""


class PrerequisiteError(StackError):
    """The machine lacks something the stack needs (java, a free port, disk space...)."""


class ServiceNotReadyError(StackError):
    """A service did not become ready before its deadline.

    Attributes:
        service: Name of the service.
        log_tail: Last lines of the service's log file (may be empty).

    """

    def __init__(self, service: str, reason: str, log_tail: list[str] | None = None) -> None:
        self.service = service
        self.log_tail = log_tail or []
        message = f"{service} is not ready: {reason}"
        if self.log_tail:
            message += "\n--- last lines of its log ---\n" + "\n".join(self.log_tail)
        super().__init__(message)
