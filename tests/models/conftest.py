"""Fixtures shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eifer_models.bundle import Bundle, create_demo_bundle, load_bundle


@pytest.fixture(scope="session")
def demo_bundle_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Bundle]:
    """One untrained demo bundle (seed 0) per variant and test session, shared by the model test
    files; tests that change files work on a copy."""

    def make(fp16_onnx: bool = False) -> Bundle:
        path = tmp_path_factory.getbasetemp() / f"demo_bundle_seed0_fp16{int(fp16_onnx)}"
        if (path / "manifest.json").is_file():
            return load_bundle(path)
        return create_demo_bundle(path, seed=0, fp16_onnx=fp16_onnx)

    return make
