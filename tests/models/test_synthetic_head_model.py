"""The generated head has FLAME's structure and localised, visible movements."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from eifer_models import flame_io
from eifer_models.flame import FLAME
from eifer_models.synthetic_head import EXPRESSION_NAMES, main, make_synthetic_head


@pytest.fixture(scope="module")
def head() -> dict[str, np.ndarray]:
    return make_synthetic_head()


def test_generation_is_deterministic(head: dict[str, np.ndarray]) -> None:
    again = make_synthetic_head()
    assert all(np.array_equal(head[k], again[k]) for k in head)
    other = make_synthetic_head(seed=1)
    assert np.array_equal(head["v_template"], other["v_template"])  # the neutral face is fixed
    assert not np.array_equal(head["shapedirs"], other["shapedirs"])  # the random fields vary


def test_arrays_have_flames_names_shapes_and_joint_tree(head: dict[str, np.ndarray]) -> None:
    V = head["v_template"].shape[0]
    assert 1000 <= V <= 3000
    assert head["shapedirs"].shape == (V, 3, 400)
    assert head["posedirs"].shape == (V, 3, 36)
    assert head["J_regressor"].shape == (5, V)
    assert head["weights"].shape == (V, 5)
    assert head["kintree_table"].tolist() == [[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]
    assert head["l_eyelid"].shape == head["r_eyelid"].shape == (V, 3)
    np.testing.assert_allclose(head["weights"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(head["J_regressor"].sum(1), 1.0, atol=1e-6)
    assert head["lmk_faces_idx"].shape == (51,) and head["lmk_bary_coords"].shape == (51, 3)
    np.testing.assert_allclose(head["lmk_bary_coords"].sum(1), 1.0, atol=1e-6)


def test_named_expressions_are_visible_and_localised(head: dict[str, np.ndarray]) -> None:
    v, dirs = head["v_template"], head["shapedirs"][:, :, 300:]
    face = np.zeros(v.shape[0], bool)
    face[head["mask_face"]] = True
    y = v[:, 1]
    region = {  # upper face movements stay above the nose tip, lower face ones below the eyes
        "brow_raise": y > 0.01,
        "brow_lower": y > 0.01,
        "eye_squint": (y > -0.01) & (y < 0.045),
        "smile": y < 0.03,
        "lip_pucker": y < 0.0,
        "lip_corner_depressor": y < 0.0,
        "chin_raise": y < -0.03,
    }
    for i, name in enumerate(EXPRESSION_NAMES):
        mag = np.linalg.norm(dirs[:, :, i], axis=1)
        assert mag.max() > 1.5e-3, f"{name} moves less than 1.5 mm per unit"
        assert (mag[face] > 0).mean() < 0.5, f"{name} moves most of the face: not localised"
        if name in region:
            assert np.all(mag[~region[name]] < 0.05 * mag.max()), f"{name} moves outside its region"
        assert np.all(mag[v[:, 2] < 0] == 0), f"{name} moves the back of the head"


def test_left_and_right_are_mirror_images(head: dict[str, np.ndarray]) -> None:
    lmk = head["v_template"][head["f"][head["lmk_faces_idx"]]]
    xy = (lmk * head["lmk_bary_coords"][:, :, None]).sum(1)[:, :2]
    mirrored = xy * np.array([-1, 1])
    dist = np.linalg.norm(xy[:, None] - mirrored[None], axis=2).min(1)
    assert dist.max() < 1e-3
    left, right = head["l_eyelid"], head["r_eyelid"]
    assert np.all(
        head["v_template"][np.linalg.norm(left, axis=1) > 0, 0] > 0
    )  # FLAME: left eye at +x
    assert np.all(head["v_template"][np.linalg.norm(right, axis=1) > 0, 0] < 0)


def test_jaw_joint_sits_behind_the_mouth_and_drives_only_the_lower_face(
    head: dict[str, np.ndarray],
) -> None:
    flame = FLAME(head)
    joints = flame(jaw=torch.zeros(1, 3)).joints[0].numpy()
    assert abs(joints[2, 0]) < 1e-6 and -0.03 < joints[2, 1] < 0.0 and joints[2, 2] < 0.0
    jaw_vertices = head["v_template"][head["weights"][:, 2] > 0]
    assert jaw_vertices[:, 1].max() < -0.035


def test_face_mask_triangles_face_the_camera(head: dict[str, np.ndarray]) -> None:
    tris = flame_io.face_triangles(head)
    assert 1000 < tris.size < head["f"].shape[0] // 2
    v = head["v_template"][head["f"][tris]]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (normals[:, 2] > 0).mean() > 0.97


def test_cli_writes_a_contact_sheet_and_an_npz(tmp_path: Path) -> None:
    png, npz = tmp_path / "head.png", tmp_path / "head.npz"
    assert main(["--png", str(png), "--npz", str(npz)]) == 0
    sheet = cv2.imread(str(png))
    assert sheet is not None and sheet.shape == (4 * 224, 4 * 224, 3)
    tiles = [
        sheet[r : r + 224, c : c + 224] for r in range(0, 896, 224) for c in range(0, 896, 224)
    ]
    neutral = tiles[0].astype(int)
    assert all(
        np.abs(t.astype(int) - neutral).mean() > 0.2 for t in tiles[1:16]
    )  # every case differs
    assert FLAME.from_npz(npz).num_vertices == make_synthetic_head()["v_template"].shape[0]
