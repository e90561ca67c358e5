"""The crop mode a bundle declares (``crop`` in the manifest), and the cropper built from it."""

from __future__ import annotations

import json
import shutil

import pytest

from eifer_models.bundle import load_bundle
from eifer_models.face_crop import FaceCropper
from eifer_models.face_detection.crop import CropSpec
from eifer_models.face_detection.models import fetch_models
from streaming.errors import BundleError


@pytest.fixture
def copy(demo_bundle_factory, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(demo_bundle_factory().path, target)
    return target


def _edit(path, edit) -> None:
    data = json.loads((path / "manifest.json").read_text())
    edit(data)
    (path / "manifest.json").write_text(json.dumps(data))


def test_demo_bundle_declares_its_crop(demo_bundle_factory) -> None:
    bundle = demo_bundle_factory()
    raw = json.loads((bundle.path / "manifest.json").read_text())
    assert raw["crop"] == {
        "mode": "eifer", "scale": 1.6, "size": 224, "box": "smoothed", "offset": [0.0, 0.0]
    }  # fmt: skip
    assert bundle.manifest.crop == CropSpec()


def test_a_crop_written_before_box_and_offset_existed_is_smoothed_and_centred(copy) -> None:
    _edit(copy, lambda d: d.__setitem__("crop", {"mode": "eifer", "scale": 1.8, "size": 224}))
    crop = load_bundle(copy).manifest.crop
    assert (crop.box, crop.offset, crop.scale) == ("smoothed", (0.0, 0.0), 1.8)


def test_a_steady_bundle_gives_a_steady_cropper_with_its_offset(copy) -> None:
    spec = {"mode": "eifer", "scale": 2.1, "size": 224, "box": "steady", "offset": [0.01, -0.05]}
    _edit(copy, lambda d: d.__setitem__("crop", spec))
    cropper = FaceCropper.for_bundle(load_bundle(copy))
    assert cropper.spec.box == "steady" and cropper.spec.offset == (0.01, -0.05)
    assert "steady" in cropper.describe()


def test_an_offset_outside_the_box_is_a_clear_bundle_error(copy) -> None:
    _edit(copy, lambda d: d.__setitem__("crop", {"mode": "eifer", "offset": [0.0, 0.9]}))
    with pytest.raises(BundleError, match="offset"):
        load_bundle(copy)


def test_an_old_bundle_without_crop_gets_the_eifer_default(copy) -> None:
    _edit(copy, lambda d: d.pop("crop"))
    assert load_bundle(copy).manifest.crop == CropSpec(mode="eifer", scale=1.6)


def test_a_smirk_bundle_gives_a_smirk_cropper(copy) -> None:
    fetch_models()  # the landmark models, through the package index when a checkout lacks them
    _edit(copy, lambda d: d.__setitem__("crop", {"mode": "smirk", "scale": 1.4, "size": 224}))
    bundle = load_bundle(copy)
    cropper = FaceCropper.for_bundle(bundle)
    assert cropper.mode == "smirk" and cropper.margin == 1.4 and cropper.landmarks_enabled


def test_an_unknown_crop_mode_is_a_clear_bundle_error(copy) -> None:
    _edit(copy, lambda d: d.__setitem__("crop", {"mode": "mtcnn", "scale": 1.4}))
    with pytest.raises(BundleError, match="crop"):
        load_bundle(copy)
