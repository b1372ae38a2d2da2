"""Errors the engine raises on purpose, each with a message meant for a person.

`InputError` means the user's input was wrong (CLI exit code 2); `StoreError`
means the store could not do what was asked (exit code 1).
"""

from __future__ import annotations


class AudiencesError(Exception):
    """Base of every error the engine raises deliberately."""

    exit_code = 1


class InputError(AudiencesError):
    """The input (a file, a value, a rule) was wrong; nothing was written."""

    exit_code = 2


class StoreError(AudiencesError):
    """The store is missing, corrupt, locked, read-only or full."""

    exit_code = 1


class QueryCancelled(AudiencesError):
    """A running query was interrupted because its result is no longer wanted."""
