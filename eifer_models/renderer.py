"""Differentiable monochrome face renderer in pure PyTorch, under SMIRK's contract.

SMIRK (``src/renderer/renderer.py``, Retsinas et al., CVPR 2024) draws only the FLAME face-mask
triangles with a weak-perspective camera ``x' = s(x+tx), y' = -s(y+ty), z' = -s z`` (NDC, y
down), constant grey albedo 180/255 and Lambertian shading ``clamp(n.l, 0, 1)`` averaged over 5
directional lights of intensity 1.7, with unit vertex normals of the posed model-space mesh
(drawn triangles only) interpolated by screen-space barycentrics and not renormalised.
Background is exactly 0 (SMIRK derives masks from ``rendered == 0``). PyTorch3D is not
available here, so this module rasterises itself:

- hard visibility: every triangle's pixel-centre bounding box is enumerated (vectorised over
  triangles and batch), inside-tested and z-buffered (nearest = smallest z'), without gradient;
- gradients flow through the barycentric coordinates of the winning triangle at each pixel
  (w.r.t. vertices and camera) and through normal interpolation and shading, like PyTorch3D's
  rasteriser with ``blur_radius=0``.

Pixel ``(col, row)`` covers ``[col, col+1) x [row, row+1)`` of ``p = (ndc + 1) / 2 * size``;
its centre is ``+0.5``. Image size and device are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ALBEDO = 180.0 / 255.0  # SMIRK's constant grey
LIGHT_DIRECTIONS = ((-1, 1, 1), (1, 1, 1), (-1, -1, 1), (1, -1, 1), (0, 0, 1))
LIGHT_INTENSITY = 1.7


@dataclass(frozen=True)
class RenderOutput:
    """``image`` (B,1,H,W) grey in [0, ~0.794], 0 where nothing is drawn; ``coverage`` (B,1,H,W)
    bool, pixels covered by a drawn triangle; ``triangle_id`` (B,H,W) index into the drawn
    triangles (-1 = background); ``transformed_vertices`` (B,V,3) NDC (SMIRK's); ``landmarks_2d``
    (B,L,2) pixel coordinates, when landmarks were given."""

    image: Tensor
    coverage: Tensor
    triangle_id: Tensor
    transformed_vertices: Tensor
    landmarks_2d: Tensor | None

    def rgb(self) -> Tensor:
        """The render as SMIRK's 3 identical channels (B,3,H,W)."""
        return self.image.expand(-1, 3, -1, -1)


def project(points: Tensor, cam: Tensor) -> Tensor:
    """Weak-perspective projection (B,N,3), cam (B,3) = (s, tx, ty) -> NDC (B,N,3), y and z
    negated (SMIRK/DECA ``batch_orth_proj`` then the flip)."""
    s, t = cam[:, None, 0:1], cam[:, None, 1:3]
    xy = s * (points[..., :2] + t)
    return torch.cat([xy[..., :1], -xy[..., 1:2], -s * points[..., 2:3]], -1)


def ndc_to_pixels(ndc_xy: Tensor, height: int, width: int) -> Tensor:
    """NDC x/y in [-1, 1] -> continuous pixel coordinates (col, row)."""
    size = torch.tensor([width, height], dtype=ndc_xy.dtype, device=ndc_xy.device)
    return (ndc_xy + 1) / 2 * size


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals (B,V,3) from triangles (T,3) (outward for CCW faces)."""
    tri = vertices[:, faces]  # (B,T,3,3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n = n.index_add(1, faces[:, k], fn)
    return F.normalize(n, dim=-1, eps=1e-12)


def _barycentric(p: Tensor, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Barycentric coordinates (...,3) of 2D points p w.r.t. triangles (a, b, c)."""
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[..., 0] * v1[..., 1] - v1[..., 0] * v0[..., 1]
    w1 = (v2[..., 0] * v1[..., 1] - v1[..., 0] * v2[..., 1]) / den
    w2 = (v0[..., 0] * v2[..., 1] - v2[..., 0] * v0[..., 1]) / den
    return torch.stack([1 - w1 - w2, w1, w2], -1)


MAX_PAIRS = 1 << 22  # (triangle, pixel) candidates per rasterisation pass: bounds memory


def _fragments(
    tri: Tensor, tz: Tensor, x0: Tensor, y0: Tensor, w: Tensor, count: Tensor, first: int, last: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixels inside triangles ``first..last-1`` (flattened batch x triangle index):
    (triangle index, col, row, depth) of every covered pixel centre."""
    count = count[first:last]
    total = int(count.sum())
    pair = first + torch.repeat_interleave(torch.arange(last - first, device=tri.device), count)
    local = torch.arange(total, device=tri.device) - (torch.cumsum(count, 0) - count)[pair - first]
    px = x0[pair] + local % w[pair]
    py = y0[pair] + torch.div(local, w[pair], rounding_mode="floor")
    centre = torch.stack([px, py], -1).to(tri.dtype) + 0.5
    t = tri[pair]
    bary = _barycentric(centre, t[:, 0], t[:, 1], t[:, 2])
    inside = (bary >= 0).all(-1) & torch.isfinite(bary).all(-1)
    pair, px, py = pair[inside], px[inside], py[inside]
    return pair, px, py, (bary[inside] * tz[pair]).sum(-1)


@torch.no_grad()
def rasterize(
    pix_xy: Tensor,
    depth: Tensor,
    faces: Tensor,
    height: int,
    width: int,
    max_pairs: int = MAX_PAIRS,
) -> Tensor:
    """Hard-visibility rasterisation: per pixel, the index of the nearest triangle (smallest
    ``depth``) whose interior holds the pixel centre, or -1. pix_xy (B,V,2), depth (B,V),
    faces (T,3) -> (B,H,W) long. Candidates are processed in passes of at most ``max_pairs``
    (triangle, pixel) pairs (one pass for a face; more only for huge triangles)."""
    B, T = pix_xy.shape[0], faces.shape[0]
    device = pix_xy.device
    out = torch.full((B * height * width,), -1, dtype=torch.long, device=device)
    if T == 0:
        return out.view(B, height, width)
    tri = pix_xy[:, faces].reshape(B * T, 3, 2)
    tz = depth[:, faces].reshape(B * T, 3)
    lo, hi = tri.min(1).values, tri.max(1).values
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(min=0)
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(min=0)
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(max=height - 1)
    finite = torch.isfinite(tri).all(2).all(1)
    w = torch.where(finite, (x1 - x0 + 1).clamp(min=0), 0).long()
    h = torch.where(finite, (y1 - y0 + 1).clamp(min=0), 0).long()
    x0, y0, count = x0.nan_to_num().long(), y0.nan_to_num().long(), w * h
    # split the triangles into passes whose candidate counts stay under max_pairs
    ends = torch.cumsum(count, 0)
    bounds, first = [], 0
    while first < B * T:
        base = int(ends[first - 1]) if first else 0
        last = int(torch.searchsorted(ends, base + max(max_pairs, 1), right=True))
        last = max(last, first + 1)
        bounds.append((first, last))
        first = last
    best = torch.full((B * height * width,), float("inf"), dtype=tri.dtype, device=device)
    passes = []
    for first, last in bounds:  # pass 1: nearest depth per pixel
        pair, px, py, z = _fragments(tri, tz, x0, y0, w, count, first, last)
        key = torch.div(pair, T, rounding_mode="floor") * (height * width) + py * width + px
        best = best.scatter_reduce(0, key, z, reduce="amin")
        passes.append((pair, key, z) if len(bounds) == 1 else None)
    for (first, last), kept in zip(bounds, passes, strict=True):  # pass 2: which triangle
        if kept is None:
            pair, px, py, z = _fragments(tri, tz, x0, y0, w, count, first, last)
            key = torch.div(pair, T, rounding_mode="floor") * (height * width) + py * width + px
        else:
            pair, key, z = kept
        win = z <= best[key]
        out = out.scatter_reduce(0, key[win], pair[win] % T, reduce="amax")
    return out.view(B, height, width)


class Renderer(nn.Module):
    """Monochrome differentiable renderer of a triangle subset (SMIRK's face mask).

    ``faces`` (T,3) are the model's triangles, ``draw`` the indices of those to render (all when
    None), ``image_size`` an int or (height, width).
    """

    faces: Tensor  # buffers (register_buffer), declared for the type checker
    lights: Tensor

    def __init__(
        self,
        faces: Tensor,
        draw: Tensor | None = None,
        image_size: int | tuple[int, int] = 224,
        albedo: float = ALBEDO,
        light_directions: Sequence[Sequence[float]] = LIGHT_DIRECTIONS,
        light_intensity: float = LIGHT_INTENSITY,
    ) -> None:
        super().__init__()
        faces = torch.as_tensor(faces, dtype=torch.long)
        if draw is not None:
            faces = faces[torch.as_tensor(draw, dtype=torch.long)]
        self.register_buffer("faces", faces)
        self.height, self.width = (
            (image_size, image_size) if isinstance(image_size, int) else image_size
        )
        self.albedo, self.light_intensity = float(albedo), float(light_intensity)
        self.register_buffer(
            "lights", F.normalize(torch.tensor(light_directions, dtype=torch.float32), dim=-1)
        )

    def forward(
        self, vertices: Tensor, cam: Tensor, landmarks: Tensor | None = None
    ) -> RenderOutput:
        """vertices (B,V,3) posed model-space mesh, cam (B,3) = (s, tx, ty), landmarks (B,L,3)."""
        B, H, W = vertices.shape[0], self.height, self.width
        if vertices.ndim != 3 or vertices.shape[2] != 3 or cam.shape != (B, 3):
            raise ValueError(
                f"Renderer needs vertices (B,V,3) and cam (B,3); got {tuple(vertices.shape)} "
                f"and {tuple(cam.shape)}"
            )
        ndc = project(vertices, cam)
        pix = ndc_to_pixels(ndc[..., :2], H, W)
        tri_id = rasterize(pix.detach(), ndc[..., 2].detach(), self.faces, H, W)
        b, py, px = torch.nonzero(tri_id >= 0, as_tuple=True)
        f = self.faces[tri_id[b, py, px]]  # (N,3) vertex ids
        centre = torch.stack([px, py], -1).to(vertices.dtype) + 0.5
        corners = pix[b[:, None], f]  # (N,3,2), differentiable
        bary = _barycentric(centre, corners[:, 0], corners[:, 1], corners[:, 2])
        normals = vertex_normals(vertices, self.faces)[b[:, None], f]  # (N,3,3)
        n = (bary[..., None] * normals).sum(1)  # not renormalised, as in SMIRK's render()
        lights = self.lights.to(vertices)
        shade = (n @ lights.T).clamp(0, 1).mean(-1) * self.light_intensity
        image = vertices.new_zeros(B, H, W).index_put((b, py, px), self.albedo * shade)
        lmk = None
        if landmarks is not None:
            lmk = ndc_to_pixels(project(landmarks, cam)[..., :2], H, W)
        return RenderOutput(image[:, None], (tri_id >= 0)[:, None], tri_id, ndc, lmk)
