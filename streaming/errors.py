"""Errors a user can act on. Nodes print their message as one clear line instead of a traceback."""

from __future__ import annotations


class EiferError(Exception):
    """Base class for errors that explain what is wrong and what to do."""


class StreamNotFoundError(EiferError):
    """No LSL stream matched the selector within the timeout."""


class StreamFormatError(EiferError):
    """A stream's channel count, rate, format or metadata is not what the consumer needs."""


class PayloadError(EiferError):
    """A bus message cannot be decoded (malformed, wrong schema, bad array)."""


class SessionFileError(EiferError):
    """A session file (XDF, video, manifest) is missing, truncated or corrupt."""


class BundleError(EiferError):
    """A model bundle is missing a file, fails its checksum or does not match the code."""
