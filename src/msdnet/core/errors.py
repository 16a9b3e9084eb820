"""One exception type for bad input: the CLI prints its message as one line and exits 2."""

from __future__ import annotations


class MsdnetError(Exception):
    """Bad input the user can fix. The message names the file and the fix."""


class ConfigError(MsdnetError):
    """A config file has an unknown key, a wrong type or a wrong value."""


class DataError(MsdnetError):
    """A data set is missing, corrupt, or does not match what a file expects."""
