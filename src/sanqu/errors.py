"""Exception hierarchy of sanqu.

Every error a user can cause derives from :class:`SanquError` and also from the
matching builtin, so ``except ValueError`` keeps working for callers who do not
know sanqu's classes. The command line turns a :class:`SanquError` into one line
on stderr and a non-zero exit code; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


class SanquError(Exception):
    """Root of all errors caused by the user's inputs or configuration."""


class ConfigError(SanquError, ValueError):
    """A configuration key holds a value that is missing, malformed or inconsistent."""


class InputError(SanquError, ValueError):
    """An input dataset is missing, unreadable, or does not fit the study grid."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input file named in the configuration does not exist."""


class QuotaError(SanquError, ValueError):
    """A quota or cap cannot be met by the land available to it."""


class OutputError(SanquError, OSError):
    """The output folder cannot be created or would overwrite existing results."""
