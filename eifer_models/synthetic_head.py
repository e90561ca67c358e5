"""A small generated head model with FLAME's structure, for tests and the demo.

FLAME 2020 is licence-gated and cannot be shipped, so this module generates (deterministically)
a head of the same layout: the arrays ``v_template``, ``shapedirs`` (300 shape + 100 expression
components), ``posedirs`` (V,3,36), ``J_regressor`` (5,V), ``weights`` (V,5), ``kintree_table``
(root, neck, jaw, left eye, right eye), ``f``, SMIRK-style ``l_eyelid``/``r_eyelid`` offsets, a
``mask_face`` vertex set (the triangles the renderer draws) and a 51-point static landmark
embedding in the iBUG-68 order of FLAME's ``static_lmk`` (points 17..67). Geometry: an
ellipsoid skull (~2.5k vertices, denser in front) with nose, brows, eye sockets, lips, cheeks and
chin, and two hidden eyeballs skinned to the eye joints. The first expression components are
named, localised movements (:data:`EXPRESSION_NAMES`); the rest are small smooth local fields.
Units are metres, y up, +z towards the camera, +x the subject's left (FLAME's frame).

It is saved and loaded through the same npz path as FLAME (:meth:`FLAME.from_npz`), so every
user runs the real FLAME code. ``python -m eifer_models.synthetic_head --png head.png`` renders a
contact sheet of neutral and a few expressions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eifer_models import flame_io

if TYPE_CHECKING:
    from eifer_models.flame import FLAME

FORMAT_VERSION = 1
AXES_M = (0.075, 0.10, 0.09)  # ellipsoid semi-axes x, y, z (an adult head is ~15 x 20 x 18 cm)
N_RINGS, N_AROUND = 44, 56  # latitude rings below the top pole, vertices per ring
THETA_MAX = np.deg2rad(150.0)  # open bottom: the neck cut
EYE_CENTRES_M = ((0.032, 0.030), (-0.032, 0.030))  # (x, y) of left (+x) and right eye
EXPRESSION_NAMES = (
    "brow_raise",
    "brow_lower",
    "smile",
    "lip_pucker",
    "lip_corner_depressor",
    "nose_wrinkle",
    "cheek_puff",
    "eye_squint",
    "upper_lip_raise",
    "chin_raise",
    "mouth_stretch",
    "lip_press",
)
# The same movements on one side of the face only (``<name>_l`` = the subject's left, +x), right
# after the symmetric ones: a participant model can move the two sides apart (asymmetric faces,
# facial palsy). Each is its symmetric movement times a smooth side weight across the midline.
LATERAL_EXPRESSION_NAMES = tuple(f"{n}_{side}" for n in EXPRESSION_NAMES for side in ("l", "r"))
_CUTOFF = 0.02  # Gaussian weights below this (beyond ~2.8 sigma) are exactly 0: localised support


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _skull() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ellipsoid grid: vertices (V,3), faces (F,3), unit directions (V,3), ring index (V,)."""
    u = np.arange(N_AROUND) / N_AROUND * 2 - 1  # [-1, 1)
    phi = np.pi * (0.45 * u + 0.55 * u**3)  # denser towards the face (phi = 0)
    theta = np.linspace(0, THETA_MAX, N_RINGS + 1)[1:]
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(
        -1, 3
    )
    dirs = np.concatenate([[[0.0, 1.0, 0.0]], dirs])
    rings = np.concatenate([[0], np.repeat(np.arange(1, N_RINGS + 1), N_AROUND)])
    idx = lambda r, k: 1 + (r - 1) * N_AROUND + (k % N_AROUND)  # noqa: E731
    faces = [(0, idx(1, k + 1), idx(1, k)) for k in range(N_AROUND)]
    for r in range(1, N_RINGS):
        for k in range(N_AROUND):
            a, b, c, d = idx(r, k), idx(r, k + 1), idx(r + 1, k), idx(r + 1, k + 1)
            faces += [(a, b, d), (a, d, c)]
    return dirs * np.asarray(AXES_M), np.asarray(faces, np.int64), dirs, rings


def _sphere(
    centre: np.ndarray, radius: float, n_rings: int = 5, n_around: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(0, np.pi, n_rings + 2)[1:-1]
    phi = np.arange(n_around) / n_around * 2 * np.pi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(
        -1, 3
    )
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radius + centre
    idx = lambda r, k: 1 + r * n_around + (k % n_around)  # noqa: E731
    bottom = len(verts) - 1
    faces = [(0, idx(0, k + 1), idx(0, k)) for k in range(n_around)]
    for r in range(n_rings - 1):
        for k in range(n_around):
            a, b, c, d = idx(r, k), idx(r, k + 1), idx(r + 1, k), idx(r + 1, k + 1)
            faces += [(a, b, d), (a, d, c)]
    faces += [(bottom, idx(n_rings - 1, k), idx(n_rings - 1, k + 1)) for k in range(n_around)]
    return verts, np.asarray(faces, np.int64)


class _Face:
    """Gaussian bumps/fields over the frontal (x, y) of the skull, zero behind it."""

    def __init__(self, base: np.ndarray, dirs: np.ndarray) -> None:
        self.x, self.y = base[:, 0], base[:, 1]
        self.front = _smoothstep((dirs[:, 2] - 0.15) / 0.35)
        self.side = np.sign(self.x)

    def g(self, cx: float, cy: float, sx: float, sy: float, mirror: bool = True) -> np.ndarray:
        """Gaussian weight at (+-cx, cy) (both sides when ``mirror``), cut to exact zero."""
        x = np.abs(self.x) if mirror else self.x
        w = np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((self.y - cy) / sy) ** 2)) * self.front
        return np.where(w < _CUTOFF, 0.0, w)


def _template_relief(face: _Face) -> np.ndarray:
    """Forward (z) relief of the neutral face, metres."""
    dz = (
        0.026 * face.g(0, -0.002, 0.009, 0.020)  # nose ridge
        + 0.006 * face.g(0, -0.014, 0.012, 0.006)  # nose tip / alae
        - 0.013 * face.g(0.032, 0.030, 0.013, 0.010)  # eye sockets
        + 0.006 * face.g(0.032, 0.030, 0.008, 0.004)  # closed-eye bulge (lids over eyeballs)
        + 0.005 * face.g(0.030, 0.047, 0.018, 0.005)  # brow ridge
        + 0.007 * face.g(0, -0.039, 0.017, 0.004)  # upper lip
        + 0.007 * face.g(0, -0.050, 0.015, 0.004)  # lower lip
        - 0.004 * face.g(0, -0.0445, 0.020, 0.0025)  # mouth line
        + 0.007 * face.g(0, -0.078, 0.014, 0.010)  # chin
        + 0.004 * face.g(0.045, -0.012, 0.016, 0.016)  # cheekbones
    )
    return dz


def _expression_basis(
    face: _Face, normals: np.ndarray, rng: np.random.Generator, n: int
) -> np.ndarray:
    """(V,3,n) expression components: named movements first, then small local random fields."""
    s, V = face.side, face.x.shape[0]
    ones, zeros = np.ones(V), np.zeros(V)
    vec = lambda x, y, z: np.stack(np.broadcast_arrays(x, y, z), -1)  # noqa: E731
    mm = 1e-3
    named = [
        3 * mm * face.g(0.030, 0.055, 0.022, 0.014)[:, None] * vec(0, 1, 0.2),  # brow_raise
        3 * mm * face.g(0.016, 0.046, 0.012, 0.009)[:, None] * vec(-0.6 * s, -1, 0.3),  # brow_lower
        4 * mm * face.g(0.025, -0.044, 0.010, 0.010)[:, None] * vec(0.6 * s, 0.8, -0.1)
        + 2 * mm * face.g(0.040, -0.018, 0.014, 0.014)[:, None] * vec(0, 0.6, 0.5),  # smile
        5
        * mm
        * face.g(0, -0.044, 0.018, 0.012)[:, None]
        * vec(-0.8 * face.x / 0.02, zeros, ones),  # pucker
        4
        * mm
        * face.g(0.025, -0.048, 0.010, 0.012)[:, None]
        * vec(0, -1, 0),  # lip_corner_depressor
        3 * mm * face.g(0.011, 0.008, 0.007, 0.012)[:, None] * vec(0, 0.8, 0.4)
        + 1.5 * mm * face.g(0, -0.036, 0.012, 0.006)[:, None] * vec(0, 1, 0),  # nose_wrinkle
        5 * mm * face.g(0.042, -0.034, 0.015, 0.015)[:, None] * normals,  # cheek_puff
        2.5 * mm * face.g(0.032, 0.016, 0.012, 0.006)[:, None] * vec(0, 1, 0.3),  # eye_squint
        3 * mm * face.g(0, -0.036, 0.014, 0.006)[:, None] * vec(0, 1, 0.3),  # upper_lip_raise
        3 * mm * face.g(0, -0.070, 0.015, 0.012)[:, None] * vec(0, 0.8, 0.5),  # chin_raise
        4 * mm * face.g(0.025, -0.044, 0.010, 0.010)[:, None] * vec(s, 0, -0.2),  # mouth_stretch
        2 * mm * face.g(0, -0.037, 0.016, 0.004)[:, None] * vec(0, -1, 0)
        + 2 * mm * face.g(0, -0.051, 0.016, 0.004)[:, None] * vec(0, 1, 0),  # lip_press
    ]
    assert len(named) == len(EXPRESSION_NAMES)
    left = _smoothstep((face.x + 0.003) / 0.006)[:, None]  # 0 right of the midline, 1 left of it
    lateral = [c * w for c in named for w in (left, 1.0 - left)]
    comps = [*named, *lateral]
    while len(comps) < n:
        cx, cy = rng.uniform(-0.05, 0.05), rng.uniform(-0.08, 0.06)
        sx, sy = rng.uniform(0.008, 0.02, 2)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        comps.append(1.5 * mm * face.g(cx, cy, sx, sy, mirror=False)[:, None] * direction)
    return np.stack(comps[:n], -1)


def _shape_basis(anchor: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """(V,3,n) identity components: global proportions first, then smooth random 3D fields."""
    comps = [
        anchor * np.array([0.08, 0, 0]),  # width
        anchor * np.array([0, 0.06, 0]),  # height
        anchor * np.array([0, 0, 0.06]),  # depth
    ]
    centres = anchor[rng.choice(anchor.shape[0], size=n, replace=True)]
    for k in range(len(comps), n):
        sigma = rng.uniform(0.02, 0.05)
        w = np.exp(-0.5 * np.sum((anchor - centres[k]) ** 2, 1) / sigma**2)
        amp = 3e-3 / (1 + k / 20)
        comps.append(amp * w[:, None] * rng.normal(size=3))
    return np.stack(comps, -1)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    n = np.zeros_like(v)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    for i in range(3):
        np.add.at(n, f[:, i], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


# iBUG-68 points 17..67 (FLAME's 51 static landmarks), (x, y) on the front of the face, metres.
# Public with embed_points: the synthetic participant (simulation/participant/render.py) places
# its electrodes and landmarks on the same head.
LANDMARK_XY = np.array(
    [
        *[(-0.055 + 0.0105 * i, 0.046 + 0.006 * np.sin(np.pi * (i + 0.5) / 5)) for i in range(5)],
        *[(0.013 + 0.0105 * i, 0.046 + 0.006 * np.sin(np.pi * (i + 0.5) / 5)) for i in range(5)],
        (0, 0.030), (0, 0.018), (0, 0.006), (0, -0.008),
        (-0.012, -0.016), (-0.006, -0.018), (0, -0.019), (0.006, -0.018), (0.012, -0.016),
        (-0.047, 0.030), (-0.038, 0.036), (-0.027, 0.036), (-0.018, 0.030), (-0.027, 0.025), (-0.038, 0.025),
        (0.018, 0.030), (0.027, 0.036), (0.038, 0.036), (0.047, 0.030), (0.038, 0.025), (0.027, 0.025),
        (-0.025, -0.044), (-0.016, -0.038), (-0.006, -0.036), (0, -0.037), (0.006, -0.036),
        (0.016, -0.038), (0.025, -0.044), (0.016, -0.051), (0.006, -0.054), (0, -0.055),
        (-0.006, -0.054), (-0.016, -0.051),
        (-0.020, -0.044), (-0.007, -0.042), (0, -0.042), (0.007, -0.042), (0.020, -0.044),
        (0.007, -0.046), (0, -0.046), (-0.007, -0.046),
    ]
)  # fmt: skip


def embed_points(
    v: np.ndarray, f: np.ndarray, tri_ok: np.ndarray, xy: np.ndarray, *, missing_ok: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Front-most triangle under each (x, y) and its barycentric coordinates. A point that no
    ``tri_ok`` triangle covers raises, or with ``missing_ok`` gets triangle -1 (coordinates 0)."""
    cand = np.flatnonzero(tri_ok)
    a, b, c = (v[f[cand, i], :2] for i in range(3))
    faces_idx, bary = [], []
    for p in xy:
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        w0 = 1 - w1 - w2
        inside = np.flatnonzero((w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9))
        if inside.size == 0:
            if not missing_ok:
                raise RuntimeError(f"landmark {p} is off the synthetic face")
            faces_idx.append(-1)
            bary.append((0.0, 0.0, 0.0))
            continue
        z = (w0 * v[f[cand, 0], 2] + w1 * v[f[cand, 1], 2] + w2 * v[f[cand, 2], 2])[inside]
        j = inside[np.argmax(z)]
        faces_idx.append(cand[j])
        bary.append((w0[j], w1[j], w2[j]))
    return np.asarray(faces_idx, np.int64), np.asarray(bary, np.float32)


def make_synthetic_head(seed: int = 0) -> dict[str, np.ndarray]:
    """Generate the head's arrays (deterministic for a seed), in the FLAME npz layout."""
    rng = np.random.default_rng(seed)
    base, faces, dirs, rings = _skull()
    face = _Face(base, dirs)
    skin = base + _template_relief(face)[:, None] * np.array([0, 0, 1.0])
    n_skin = skin.shape[0]

    eye_parts = []
    for cx, cy in EYE_CENTRES_M:
        # eyeball just behind the socket surface: hidden, like FLAME's eyeballs under closed lids
        z_surface = (
            AXES_M[2] * np.sqrt(max(0.0, 1 - (cx / AXES_M[0]) ** 2 - (cy / AXES_M[1]) ** 2)) - 0.009
        )
        eye_parts.append(_sphere(np.array([cx, cy, z_surface - 0.014]), 0.011))
    verts, all_faces, offset = [skin], [faces], n_skin
    eye_ids = []
    for ev, ef in eye_parts:
        verts.append(ev)
        all_faces.append(ef + offset)
        eye_ids.append(np.arange(offset, offset + len(ev)))
        offset += len(ev)
    v = np.concatenate(verts)
    f = np.concatenate(all_faces)[:, [0, 2, 1]]  # counter-clockwise seen from outside
    V = v.shape[0]

    # skinning weights: jaw = lower face in front of the hinge; neck = the rest of the head;
    # root = the lowest rings (the neck cut); eyes = eyeballs.
    y, z = skin[:, 1], skin[:, 2]
    w_jaw = _smoothstep((-0.041 - y) / 0.008) * _smoothstep((z + 0.03) / 0.035)
    w_jaw *= _smoothstep((N_RINGS - rings) / 6.0)
    w_root = _smoothstep((rings - (N_RINGS - 6)) / 6.0) * (1 - w_jaw)
    weights = np.zeros((V, 5))
    weights[:n_skin, 0] = w_root
    weights[:n_skin, 2] = w_jaw
    weights[:n_skin, 1] = 1 - w_root - w_jaw
    weights[eye_ids[0], 3] = 1.0
    weights[eye_ids[1], 4] = 1.0

    # joint regressor: averages of vertex sets (rows sum to 1)
    J_regressor = np.zeros((5, V))
    J_regressor[0, np.flatnonzero(rings == N_RINGS)] = 1
    J_regressor[1, np.flatnonzero(rings == N_RINGS - 8)] = 1
    hinge = np.concatenate(
        [
            np.argsort(np.sum((skin - np.array([sx * AXES_M[0], -0.015, -0.01])) ** 2, 1))[:3]
            for sx in (1, -1)
        ]
    )
    J_regressor[2, hinge] = 1
    J_regressor[3, eye_ids[0]] = 1
    J_regressor[4, eye_ids[1]] = 1
    J_regressor /= J_regressor.sum(1, keepdims=True)

    # pose correctives: jaw features deform only the jaw region, neck features only the neck
    posedirs = np.zeros((V, 3, 36))
    posedirs[:n_skin, :, 9:18] = 0.004 * w_jaw[:, None, None] * rng.normal(size=(3, 9))
    posedirs[:n_skin, :, 0:9] = 0.004 * w_root[:, None, None] * rng.normal(size=(3, 9))

    normals = _vertex_normals(skin, faces)
    shapedirs = np.zeros((V, 3, 400))
    anchor = v.copy()
    for ids in eye_ids:  # eyeballs move rigidly with the surface field at their centre
        anchor[ids] = v[ids].mean(0)
    shapedirs[:, :, :300] = _shape_basis(anchor, rng, 300)
    shapedirs[:n_skin, :, 300:] = _expression_basis(face, normals, rng, 100)

    # eyelids (SMIRK's l_eyelid/r_eyelid: world-space offsets, eyelid=1 closes the lid, ~9 mm)
    eyelids = []
    for cx, cy in EYE_CENTRES_M:
        w = face.g(cx, cy + 0.006, 0.011, 0.006, mirror=False) * (np.sign(face.x) == np.sign(cx))
        off = np.zeros((V, 3))
        off[:n_skin] = 0.009 * w[:, None] * np.array([0, -1.0, 0.15])
        eyelids.append(off)

    dirz = dirs[:, 2]
    mask_face = np.flatnonzero((dirz > 0.4) & (skin[:, 1] < 0.085) & (skin[:, 1] > -0.093))
    tri_front = np.zeros(f.shape[0], bool)
    tri_front[: faces.shape[0]] = (dirz[faces] > 0.3).all(1)
    lmk_faces_idx, lmk_bary = embed_points(v, f, tri_front, LANDMARK_XY)

    arrays = {
        "v_template": v,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
        "f": f,
        "l_eyelid": eyelids[0],
        "r_eyelid": eyelids[1],
        "mask_face": mask_face,
        "lmk_faces_idx": lmk_faces_idx,
        "lmk_bary_coords": lmk_bary,
    }
    return flame_io.flame_arrays(arrays, source="synthetic head")


def write_synthetic_head(path: str | Path, seed: int = 0) -> Path:
    """Generate the head and save it as a FLAME npz (loadable with :meth:`FLAME.from_npz`)."""
    return flame_io.save_npz(path, make_synthetic_head(seed))


def synthetic_flame(path: str | Path | None = None, seed: int = 0, n_exp: int = 50) -> FLAME:
    """The synthetic head as a :class:`FLAME` layer, written to and read back from ``path``
    (default: ``$XDG_CACHE_HOME/eifer`` or ``~/.cache/eifer``, named by seed and a digest of
    this module's source, so an edited generator never serves a stale cache)."""
    from eifer_models.flame import FLAME

    if path is None:
        digest = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:10]  # regenerate on change
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eifer"
        path = cache / f"synthetic_head_v{FORMAT_VERSION}_s{seed}_{digest}.npz"
    path = Path(path)
    if not path.exists():
        write_synthetic_head(path, seed)
    return FLAME.from_npz(path, n_exp=n_exp)


def contact_sheet(out_png: str | Path, image_size: int = 224, strength: float = 2.5) -> Path:
    """Render neutral, each named expression, jaw open, eyelids closed and a turned head into
    one labelled PNG, so a person can look at the model."""
    import cv2
    import torch

    from eifer_models.renderer import Renderer

    flame = synthetic_flame()
    renderer = Renderer(flame.faces, flame.face_triangles, image_size=image_size)
    cases: list[tuple[str, dict[str, torch.Tensor]]] = [("neutral", {})]
    for i, name in enumerate(EXPRESSION_NAMES):
        e = torch.zeros(1, 50)
        e[0, i] = strength
        cases.append((name, {"expression": e}))
    cases += [
        ("jaw_open", {"jaw": torch.tensor([[0.25, 0.0, 0.0]])}),
        ("eyelids_closed", {"eyelid": torch.ones(1, 2)}),
        ("head_turn", {"pose": torch.tensor([[0.0, 0.5, 0.0]])}),
    ]
    cam = torch.tensor([[9.0, 0.0, 0.0]])  # the face fills the tile like a SMIRK crop
    tiles = []
    with torch.no_grad():
        for name, params in cases:
            out = flame(shape=torch.zeros(1, 300), **params)
            img = renderer(out.vertices, cam, landmarks=out.landmarks)
            tile = (img.image[0, 0].numpy() / 0.8 * 255).clip(0, 255).astype(np.uint8)
            tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
            for px, py in img.landmarks_2d[0].numpy() if img.landmarks_2d is not None else []:
                cv2.circle(tile, (int(px), int(py)), 1, (0, 160, 255), -1)
            cv2.putText(tile, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
            tiles.append(tile)
    cols = 4
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), np.concatenate(rows, 0)):
        raise OSError(f"could not write {out_png}")
    return out_png


def main(argv: list[str] | None = None) -> int:
    """``python -m eifer_models.synthetic_head --png/--npz``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m eifer_models.synthetic_head", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--png", type=Path, help="write a contact sheet of renders here")
    parser.add_argument("--npz", type=Path, help="write the head model (FLAME npz layout) here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strength", type=float, default=2.5, help="expression coefficient shown")
    args = parser.parse_args(argv)
    if not (args.png or args.npz):
        parser.error("give --png and/or --npz")
    if args.npz:
        print(f"wrote {write_synthetic_head(args.npz, args.seed)}")
    if args.png:
        print(f"wrote {contact_sheet(args.png, strength=args.strength)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
