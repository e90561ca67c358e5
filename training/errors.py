"""Errors of the trainer (one clear line through the CLI, as every ``EiferError``)."""

from __future__ import annotations

from streaming.errors import EiferError, SessionFileError

__all__ = ["DatasetError", "RunError"]


class DatasetError(SessionFileError):
    """A training source (session folder, MMM file) is missing, truncated or malformed."""


class RunError(EiferError):
    """A training run cannot start or resume (folder exists, checkpoint from another config)."""
