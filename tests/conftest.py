"""Suite-wide setup: liblsl configuration before the first LSL call, paths to the shared data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Child processes inherit the variable, so outlets started by tests use the same config.
os.environ.setdefault("LSLAPICFG", str(REPO / "tests" / "lsl_api.cfg"))

SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real third-party data beside the checkout (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A stream name no other test (or a stale outlet of an earlier run) uses."""
    return f"T_{request.node.name[:40]}_{uuid.uuid4().hex[:8]}"
