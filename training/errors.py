"""Errors the training CLI reports as a single line with exit status 2: bad settings, missing data."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """Something the user supplied (config, flag, data location) cannot be used; the message says why."""


class ConfigError(TrainingInputError):
    """A config value, override or layer spec is unknown, malformed or out of range."""


class DataUnavailable(TrainingInputError):
    """No training data could be found where the user pointed (or nowhere at all)."""
