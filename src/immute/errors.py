"""The one error tree of immute.

Every expected failure is an :class:`ImmuteError`. The CLI translates it at the
boundary into one red line and the error's ``exit_code``; anything else is a bug,
logged with its traceback to the debug log. Messages never contain secret values.
"""

from __future__ import annotations

from typing import NamedTuple


class ImmuteError(Exception):
    """An expected failure, shown to the user as one line."""

    exit_code = 1


class UsageError(ImmuteError):
    """A bad argument or option on the command line."""

    exit_code = 2


class SpecProblem(NamedTuple):
    """One thing wrong with a spec file, located as precisely as the YAML allows."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(ImmuteError):
    """The spec is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class NotFoundError(ImmuteError):
    """A named thing (release, image, instance, file) does not exist."""


class LockHeldError(ImmuteError):
    """Another deploy holds the app's lock."""

    exit_code = 3


class StateError(ImmuteError):
    """The state directory is unusable (newer schema, corrupt database...)."""


class InstanceError(ImmuteError):
    """An instance could not be started or stopped by its runtime."""


class RouteError(ImmuteError):
    """A route, target or router request is invalid (bad address, weight, key)."""

    exit_code = 2


class RouterError(ImmuteError):
    """The router cannot be reached or refused a request."""


class ImageError(ImmuteError):
    """An image cannot be built, stored, read or verified."""


class UnsafeArchiveError(ImageError):
    """An archive or layer holds an entry that would escape its root; names the entry."""


class DependencyError(ImageError):
    """The app's dependencies cannot be installed (pip failed, a distribution is missing)."""


class DeployError(ImmuteError):
    """A deploy step failed; the deploy is aborted and traffic stays where it was.

    ``log_tail`` holds the failing instance's last log lines, shown with the reason.
    """

    def __init__(self, message: str, *, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail or []


class AgentError(ImmuteError):
    """The agent cannot be started or reached, or refused a request."""


class EngineError(InstanceError):
    """The container engine cannot be reached or refused a request; says what to do."""


def failure_line(output: str) -> str:
    """The line of a tool's output that best says why it failed, for a one-line
    error: the last that mentions an error, else the last, else ``no output``."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]
