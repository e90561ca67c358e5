"""A new run folder for any trainer: named by ``run_name`` or the start time, never reused."""

from __future__ import annotations

import time
from pathlib import Path

from training.errors import RunError

__all__ = ["new_run"]


def new_run(output: str, run_name: str) -> Path:
    """Create ``output/<run_name or UTC start time>``; RunError if it exists (a run is never
    overwritten)."""
    name = run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = Path(output) / name
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunError(
            f"run folder {folder} exists; a run is never overwritten: choose another run_name, "
            "or continue it with --resume"
        ) from None
    return folder
