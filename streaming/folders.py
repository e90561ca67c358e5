"""A new folder, never an existing one: sessions, synthetic sessions and training runs are
never reused or overwritten."""

from __future__ import annotations

from pathlib import Path

from streaming.errors import EiferError

__all__ = ["new_folder"]


def new_folder(path: str | Path, error: type[EiferError], message: str) -> Path:
    """Create the folder ``path`` (and its parents) and return it; ``error(message)`` if it
    already exists. Other failures (no permission, a file in the way) raise the ``OSError``."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise error(message) from None
    return folder
