"""FLAME layer semantics, checked on the generated synthetic head (same code path as FLAME 2020)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from eifer_models import flame_io
from eifer_models.flame import FLAME, rodrigues, split_phi
from eifer_models.synthetic_head import make_synthetic_head, write_synthetic_head


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return make_synthetic_head()


@pytest.fixture(scope="module")
def flame(tmp_path_factory: pytest.TempPathFactory) -> FLAME:
    path = write_synthetic_head(tmp_path_factory.mktemp("head") / "head.npz")
    return FLAME.from_npz(path)


def test_zero_parameters_give_the_template(flame: FLAME) -> None:
    out = flame(shape=torch.zeros(2, 300), expression=torch.zeros(2, 50), eyelid=torch.zeros(2, 2))
    assert out.vertices.shape == (2, flame.num_vertices, 3)
    torch.testing.assert_close(out.vertices[1], flame.v_template, atol=1e-6, rtol=0)


def test_jaw_pose_moves_only_jaw_region_vertices(flame: FLAME) -> None:
    out = flame(jaw=torch.tensor([[0.3, 0.0, 0.0]]))
    moved = (out.vertices[0] - flame.v_template).norm(dim=1) > 1e-6
    jaw_region = flame.lbs_weights[:, 2] > 0
    assert moved.any()
    assert not (moved & ~jaw_region).any(), "a vertex outside the jaw region moved"
    lower_lip_mm = (out.vertices[0] - flame.v_template).norm(dim=1).max() * 1e3
    assert lower_lip_mm > 5.0, f"the jaw barely moved ({lower_lip_mm:.1f} mm)"
    upper_face = flame.v_template[:, 1] > 0.0
    assert not (moved & upper_face).any()


def test_eyelid_parameters_move_only_eyelid_vertices_and_left_right_separately(
    flame: FLAME,
) -> None:
    left_region = flame.l_eyelid.norm(dim=1) > 0
    right_region = flame.r_eyelid.norm(dim=1) > 0
    out = flame(eyelid=torch.tensor([[1.0, 0.0]]))
    moved = (out.vertices[0] - flame.v_template).norm(dim=1) > 1e-7
    assert moved.any() and not (moved & ~left_region).any()
    assert not (moved & right_region & ~left_region).any()
    both = flame(eyelid=torch.tensor([[0.5, 1.0]])).vertices[0] - flame.v_template
    torch.testing.assert_close(both, 0.5 * flame.l_eyelid + flame.r_eyelid, atol=1e-6, rtol=0)


def test_shape_and_expression_are_linear(flame: FLAME) -> None:
    g = torch.Generator().manual_seed(0)
    a_s, b_s = torch.randn(2, 1, 300, generator=g)
    a_e, b_e = torch.randn(2, 1, 50, generator=g)
    t = flame.v_template

    def offset(s: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return flame(shape=s, expression=e).vertices[0] - t

    torch.testing.assert_close(
        offset(a_s + b_s, a_e + b_e), offset(a_s, a_e) + offset(b_s, b_e), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        offset(2.5 * a_s, -1.5 * a_e),
        2.5 * offset(a_s, 0 * a_e) - 1.5 * offset(0 * a_s, a_e),
        atol=1e-5,
        rtol=0,
    )


def test_expression_uses_components_from_index_300(
    arrays: dict[str, np.ndarray], flame: FLAME
) -> None:
    e = torch.zeros(1, 50)
    e[0, 3] = 1.0
    off = (flame(expression=e).vertices[0] - flame.v_template).numpy()
    np.testing.assert_allclose(off, arrays["shapedirs"][:, :, 303], atol=1e-6)


def test_global_pose_is_a_rigid_rotation_about_the_root(flame: FLAME) -> None:
    pose = torch.tensor([[0.2, -0.7, 0.1]])
    out = flame(pose=pose)
    R = torch.as_tensor(Rotation.from_rotvec(pose[0].numpy()).as_matrix(), dtype=torch.float32)
    root = out.joints[0, 0]
    expected = (flame.v_template - root) @ R.T + root
    torch.testing.assert_close(out.vertices[0], expected, atol=1e-5, rtol=0)


def test_eye_pose_rotates_only_the_eyeballs(flame: FLAME) -> None:
    out = flame(eyes=torch.tensor([[0.2, 0.3, 0.1, 0.0, 0.0, 0.0]]))  # left eye only
    moved = (out.vertices[0] - flame.v_template).norm(dim=1) > 1e-7
    assert torch.equal(moved, flame.lbs_weights[:, 3] > 0)
    centre = flame.v_template[moved].mean(0)
    torch.testing.assert_close(out.vertices[0, moved].mean(0), centre, atol=1e-6, rtol=0)


def test_rodrigues_matches_scipy_and_is_identity_at_zero() -> None:
    r = torch.tensor(
        [[0.0, 0.0, 0.0], [0.3, -0.2, 0.9], [1e-9, 0, 0], [-2.0, 0.5, 0.1]], dtype=torch.float64
    )
    ref = torch.as_tensor(Rotation.from_rotvec(r.numpy()).as_matrix())
    torch.testing.assert_close(rodrigues(r), ref, atol=1e-12, rtol=0)


def test_forward_is_differentiable_in_double_precision(flame: FLAME) -> None:
    small = FLAME(make_synthetic_head(), n_shape=2, n_exp=3).double()

    def f(e: torch.Tensor, jaw: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return small(expression=e, jaw=jaw, pose=pose).vertices[:, ::97]

    inputs = (
        torch.randn(1, 3, dtype=torch.float64, requires_grad=True),
        torch.tensor([[0.1, 0.02, -0.01]], dtype=torch.float64, requires_grad=True),
        torch.tensor([[0.05, 0.2, 0.0]], dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_dtype_follows_the_inputs(flame: FLAME) -> None:
    out = flame(
        expression=torch.zeros(1, 50, dtype=torch.float64),
        jaw=torch.zeros(1, 3, dtype=torch.float64),
    )
    assert out.vertices.dtype == torch.float64
    assert out.landmarks is not None and out.landmarks.shape == (1, 51, 3)


def test_short_parameter_vectors_are_zero_padded_and_bad_shapes_rejected(flame: FLAME) -> None:
    e = torch.zeros(1, 50)
    e[0, :10] = 0.7
    torch.testing.assert_close(flame(expression=e[:, :10]).vertices, flame(expression=e).vertices)
    with pytest.raises(ValueError, match="B=1"):
        flame(expression=torch.zeros(1, 50), jaw=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="<=50"):
        flame(expression=torch.zeros(1, 60))


def test_split_phi_follows_smirk_order() -> None:
    phi = torch.arange(55.0)[None]
    exp, eyelid, jaw = split_phi(phi)
    assert (
        exp.shape[-1] == 50
        and eyelid.tolist() == [[50.0, 51.0]]
        and jaw.tolist() == [[52.0, 53.0, 54.0]]
    )


def test_model_with_too_few_components_is_refused(arrays: dict[str, np.ndarray]) -> None:
    with pytest.raises(flame_io.FlameFileError, match="expression components"):
        FLAME(arrays, n_exp=101)


def test_model_without_eyelids_warns_once_and_ignores_them(
    arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    bare = FLAME({k: v for k, v in arrays.items() if k not in ("l_eyelid", "r_eyelid")})
    with caplog.at_level("WARNING", logger="eifer_models.flame"):
        out = bare(eyelid=torch.ones(1, 2))
        bare(eyelid=torch.ones(1, 2))
    torch.testing.assert_close(out.vertices[0], bare.v_template, atol=1e-6, rtol=0)
    assert sum("no eyelid blendshapes" in r.message for r in caplog.records) == 1
