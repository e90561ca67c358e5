"""Fixtures of the camera tests: MediaPipe's face models, fetched once through the package index
when a fresh checkout lacks them (``make`` normally fetches them with the virtualenv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eifer_models.face_detection.models import fetch_models


@pytest.fixture(scope="session")
def face_models() -> Path:
    return fetch_models()
