"""Optional dependencies: import one, or fail with a line that names the extra to install.

Hardware drivers and export formats are extras (``pyproject.toml``), so a pipeline machine
without a RealSense camera does not need ``pyrealsense2`` and one that never exports to MNE does
not need ``mne``. Code that needs one calls :func:`require` where it is used.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from streaming.errors import EiferError

__all__ = ["MissingDependencyError", "require"]


class MissingDependencyError(EiferError):
    """An optional package is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or MissingDependencyError naming ``pip install 'eifer-live[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed ({exc}); install it with: pip install 'eifer-live[{extra}]'"
        ) from None
