"""The small family of user-facing errors: each names the offending file, line or value."""

from __future__ import annotations


class TformerError(Exception):
    """Base class for errors the CLI reports as one clear line."""


class ConfigError(TformerError, ValueError):
    """A configuration field has an invalid value."""


class DataError(TformerError, ValueError):
    """Input data is malformed; the message names the file and line."""


class ModelFolderError(TformerError, FileNotFoundError):
    """A model or checkpoint folder is missing files or is corrupted."""
