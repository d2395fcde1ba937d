"""Errors an operator sees.

Every error carries one line that names the thing, the cause and the fix.
The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never
shows a traceback for these.
"""

from __future__ import annotations


class OpstuiError(Exception):
    """An error with a one-line, operator-facing message."""

    #: Exit code of a CLI command that fails with this error. 1 is reserved
    #: for "the command worked and found something failing" (``opstui status``).
    exit_code = 2

    def __init__(
        self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        self.message = message
        self.hint = hint
        #: Lines shown under the message, one each (the importer's bad lines).
        #: The message itself is one line whatever the data in it holds: a
        #: line break in a name is escaped, so it cannot forge a second line.
        self.details = details
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class ConfigError(OpstuiError):
    """The configuration file is unreadable or has a bad key or value."""


class UsageError(OpstuiError):
    """A command was given arguments that cannot work."""
