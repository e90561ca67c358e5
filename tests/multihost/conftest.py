"""The multi-host rig's fixtures: skipped with the reason where it cannot be built (not root,
no ``ip netns``); every rig is removed after its test, whatever happened in it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .rig import Rig, unavailable

REPO = Path(__file__).resolve().parents[2]
PROBE = str(Path(__file__).with_name("lsl_probe.py"))


def eifer(*argv: str) -> list[str]:
    """An ``eifer`` command line (this checkout, this interpreter)."""
    return [sys.executable, "-m", "nodes.cli", *argv]


def probe(*argv: str) -> list[str]:
    return [sys.executable, PROBE, *argv]


def chromium_available() -> bool:
    """The tablet's browser: the playwright package and Debian's Chromium (never
    ``playwright install``), as in tests/display."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path("/usr/bin/chromium").is_file()


NODE_ENV = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def rig_available() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def make_rig(rig_available: None, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """``make_rig(roles, block_multicast=False)``: a built rig, removed at the test's end."""
    rigs: list[Rig] = []

    def make(roles: list[str], *, block_multicast: bool = False) -> Rig:
        rig = Rig(roles, tmp_path, block_multicast=block_multicast)
        rigs.append(rig)
        return rig.__enter__()

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()
