"""The pure-PyTorch renderer: SMIRK's contract, hard visibility and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from eifer_models.renderer import ALBEDO, LIGHT_INTENSITY, Renderer, project, rasterize
from eifer_models.synthetic_head import synthetic_flame

FRONTAL_VALUE = ALBEDO * LIGHT_INTENSITY * (4 / math.sqrt(3) + 1) / 5  # SMIRK's maximum, ~0.794


def _square(z: float = 0.0, half: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +z (the camera)
    return v, f


def _pyramid(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.tensor(
        [
            [-0.61, -0.53, 0.0],
            [0.57, -0.49, 0.02],
            [0.52, 0.59, -0.03],
            [-0.55, 0.48, 0.01],
            [0.031, -0.017, 0.37],
        ],
        dtype=dtype,
    )
    f = torch.tensor([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return v, f


def test_background_is_exactly_zero_and_a_frontal_plane_gets_smirks_maximum() -> None:
    v, f = _square()
    out = Renderer(f, image_size=32)(v[None], torch.tensor([[1.0, 0.0, 0.0]]))
    img, cov = out.image[0, 0], out.coverage[0, 0]
    assert out.image.shape == (1, 1, 32, 32) and cov.dtype == torch.bool
    assert torch.all(img[~cov] == 0.0)
    assert cov.sum() == 16 * 16  # the square spans NDC [-0.5, 0.5]: exactly the centre 16x16 pixels
    torch.testing.assert_close(img[cov], torch.full_like(img[cov], FRONTAL_VALUE))
    assert abs(FRONTAL_VALUE - 0.794) < 1e-3
    assert out.rgb().shape == (1, 3, 32, 32)


def test_projection_follows_smirks_weak_perspective_camera_with_y_down() -> None:
    p = torch.tensor([[[0.1, 0.2, 0.3]]])
    cam = torch.tensor([[2.0, 0.05, -0.1]])
    torch.testing.assert_close(project(p, cam), torch.tensor([[[0.3, -0.2, -0.6]]]))
    v, f = _square(half=0.2)
    upper_right = v + torch.tensor([0.5, 0.5, 0.0])
    cov = Renderer(f, image_size=40)(upper_right[None], torch.tensor([[1.0, 0.0, 0.0]])).coverage[
        0, 0
    ]
    rows, cols = torch.nonzero(cov, as_tuple=True)
    assert rows.max() < 20 and cols.min() >= 20  # +y is up in the image, +x is right


def test_nearer_triangle_occludes_the_farther_one_in_any_order() -> None:
    near = torch.tensor([[-0.5, -0.5, 0.2], [0.5, -0.5, 0.2], [0.0, 0.5, 0.2]])
    far = torch.tensor([[-0.8, -0.8, -0.1], [0.8, -0.8, -0.1], [0.0, 0.8, -0.1]])
    for order in ((0, 1), (1, 0)):
        verts = torch.cat([near, far])
        faces = torch.tensor([[0, 1, 2], [3, 4, 5]])[list(order)]
        out = Renderer(faces, image_size=24)(verts[None], torch.tensor([[1.0, 0.0, 0.0]]))
        near_id = order.index(0)
        assert out.triangle_id[0, 12, 12] == near_id
        assert (
            out.triangle_id[0] == 1 - near_id
        ).any()  # the far triangle shows around the near one


def test_coverage_matches_triangle_area() -> None:
    verts = torch.tensor([[[-0.7, -0.6, 0.0], [0.8, -0.3, 0.0], [0.1, 0.75, 0.0]]])
    faces = torch.tensor([[0, 1, 2]])
    size = 128
    cov = (
        Renderer(faces, image_size=size)(verts, torch.tensor([[1.0, 0.0, 0.0]]))
        .coverage.sum()
        .item()
    )
    a, b, c = (verts[0, :, :2] + 1) / 2 * size
    area = 0.5 * abs(float((b - a)[0] * (c - a)[1] - (c - a)[0] * (b - a)[1]))
    assert abs(cov - area) < 0.03 * area


def test_gradients_match_finite_differences_for_vertices_and_camera() -> None:
    v, f = _pyramid()
    renderer = Renderer(f, image_size=16)
    cam = torch.tensor([[0.83, 0.041, -0.027]], dtype=torch.float64, requires_grad=True)
    verts = v[None].clone().requires_grad_(True)

    def render(verts: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        return renderer(verts, cam).image

    assert torch.autograd.gradcheck(render, (verts, cam), eps=1e-6, atol=1e-5)


def test_non_square_images_and_batches_render_each_item_independently() -> None:
    v, f = _pyramid(torch.float32)
    renderer = Renderer(f, image_size=(24, 40))
    cams = torch.tensor([[0.9, 0.0, 0.0], [0.6, 0.2, -0.1]])
    both = renderer(v[None].expand(2, -1, -1), cams)
    assert both.image.shape == (2, 1, 24, 40)
    for i in range(2):
        single = renderer(v[None], cams[i : i + 1])
        torch.testing.assert_close(both.image[i], single.image[0])
    assert (
        rasterize(
            torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.zeros(0, 3, dtype=torch.long), 4, 4
        )
        .eq(-1)
        .all()
    )


def test_synthetic_head_renders_face_only_with_landmarks_and_gradients() -> None:
    flame = synthetic_flame()
    renderer = Renderer(flame.faces, flame.face_triangles, image_size=64)
    expression = torch.zeros(1, 50, requires_grad=True)
    out = flame(expression=expression)
    cam = torch.tensor([[7.0, 0.0, 0.0]], requires_grad=True)
    r = renderer(out.vertices, cam, landmarks=out.landmarks)
    img, cov = r.image[0, 0], r.coverage[0, 0]
    assert torch.all(img[~cov] == 0) and (img[cov] > 0).all() and img.max() <= FRONTAL_VALUE + 1e-6
    assert 0.1 < cov.float().mean() < 0.6
    lmk = r.landmarks_2d[0]
    assert (
        lmk.shape == (51, 2) and cov[lmk[:, 1].long(), lmk[:, 0].long()].all()
    )  # landmarks on the face
    r.image.sum().backward()
    assert expression.grad is not None and expression.grad.abs().sum() > 0
    assert cam.grad is not None and torch.isfinite(cam.grad).all() and cam.grad.abs().sum() > 0


@pytest.mark.gpu
def test_renderer_on_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    flame = synthetic_flame()
    renderer = Renderer(flame.faces, flame.face_triangles, image_size=224)
    verts = flame(
        expression=torch.randn(2, 50, generator=torch.Generator().manual_seed(1))
    ).vertices
    cam = torch.tensor([[7.0, 0.0, 0.0], [6.0, 0.01, 0.02]])
    cpu = renderer(verts, cam).image
    gpu = renderer.cuda()(verts.cuda(), cam.cuda()).image.cpu()
    assert (cpu != gpu).float().mean() < 0.002  # a few edge pixels may flip with float rounding
    torch.testing.assert_close(gpu[cpu == gpu], cpu[cpu == gpu])


def test_bad_shapes_are_rejected_with_a_clear_error() -> None:
    v, f = _square()
    renderer = Renderer(f, image_size=8)
    with pytest.raises(ValueError, match=r"cam \(B,3\)"):
        renderer(v[None], torch.tensor([7.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"vertices \(B,V,3\)"):
        renderer(v[None, :, :2], torch.tensor([[7.0, 0.0, 0.0]]))


def test_rasterising_in_bounded_passes_gives_the_same_visibility() -> None:
    flame = synthetic_flame()
    verts = flame(expression=torch.zeros(2, 50)).vertices
    cam = torch.tensor(
        [[7.0, 0.0, 0.0], [20.0, 0.01, 0.0]]
    )  # the second: triangles near pixel size x3
    ndc = project(verts, cam)
    pix = (ndc[..., :2] + 1) / 2 * 96
    faces = flame.faces[flame.face_triangles]
    one_pass = rasterize(pix, ndc[..., 2], faces, 96, 96)
    many = rasterize(pix, ndc[..., 2], faces, 96, 96, max_pairs=500)
    assert torch.equal(one_pass, many) and (one_pass >= 0).any()
