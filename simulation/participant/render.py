"""Render a synthetic participant into camera frames (1280x720 by default), optionally with the
sEMG electrodes of a scheme drawn on the face.

The head (:mod:`eifer_models.synthetic_head` through the FLAME layer: shape, expression, eyelids,
jaw, head pose) is rasterised into a small square (``face_px``, 224 by default) with the
project's hard-visibility rasteriser; each covered pixel takes the participant's albedo from a
texture painted in the head's frontal template coordinates (skin with blotches and pores, brows,
lips, nostrils, eyes whose upper lid follows the eyelid parameters, hair), times Gouraud-shaded
Lambert lighting. The square is scaled to the head's size in the frame and alpha-composited onto
a fixed background (wall, neck, shoulders); sensor noise is added around the face. Rendering only
the face region small keeps a 1280x720 frame within a camera period on one core
(``benchmarks/participant_render.py``).

Electrodes (``occlusion``): 4 mm Ag/AgCl discs in ~10 mm adhesive collars (EIFER.md: the
recording setup), at each channel's site of the electrode scheme (``configs/electrodes``:
positions in the face frame mapped onto the head), a pair ~10 mm apart per bipolar channel,
embedded in the mesh so they follow the face; a cable runs from each to below the chin, as in the
paper's sEMG-occluded recordings.

Past the house's ~450 lines on purpose: the texture, the electrodes and the compositing are
all drawn in the head's frontal template coordinates, which this one module owns.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from eifer_models.flame import FLAME
from eifer_models.renderer import rasterize
from eifer_models.synthetic_head import (
    EYE_CENTRES_M,
    LANDMARK_XY,
    embed_points,
    make_synthetic_head,
)
from simulation.participant.model import (
    EYELID_INDEX,
    JAW_INDEX,
    N_EXPRESSION,
    PHI_LABELS,
    FaceState,
    ParticipantTraits,
)
from streaming.acquisition.electrodes import load_scheme

__all__ = ["ELECTRODE_COLLAR_M", "ParticipantRenderer", "RenderedFrame", "electrode_sites_m"]

HEAD_CENTRE_M = (0.0, -0.002)  # crop centre in the head frame (x, y)
CROP_M = 0.25  # side of the rendered square in metres (the head is ~0.15 x 0.20)
HEAD_HEIGHT_M = 0.20
ELECTRODE_COLLAR_M = 0.005  # radius of the adhesive collar
ELECTRODE_DISC_M = 0.002  # radius of the 4 mm Ag/AgCl disc
_TEX_M_PER_PX = 0.0004  # texture resolution (0.4 mm)
_TEX_X, _TEX_Y = (-0.09, 0.09), (-0.11, 0.11)
_EYE_HALF_M = (0.0115, 0.0055)  # eye opening half-width, half-height
# Forehead lines of AU1+2 (FACS, Ekman, Friesen & Hager 2002: the brow raise "produces horizontal
# wrinkles across the forehead"; the frontalis pulls the lower forehead skin up against the upper,
# which folds, Cotofana et al. 2020, Plast Reconstr Surg 145:1155): furrows between the brows and
# the hairline whose depth follows each side's brow raise (phi brow_raise_l / _r)
BROW_RAISE_INDEX = {side: PHI_LABELS.index(f"brow_raise_{side}") for side in ("l", "r")}
BROW_RAISE_FULL = 2.5  # brow_raise at full frontalis activation (muscle_map.toml: ~4 tanh(3.2/4))
FOREHEAD_LINES_Y_M = (0.055, 0.074)  # the band (template y) above the brows, to the hairline
FOREHEAD_LINE_PERIOD_M = 0.0063  # three furrows in the rig's short forehead
FOREHEAD_LINE_DEPTH = 0.45  # albedo drop at the bottom of a furrow at full brow raise
# The chin of AU17 (FACS, Ekman, Friesen & Hager 2002: the chin raiser "pushes the chin boss
# upwards", "may cause wrinkles on the chin boss" (the dimpled, "orange peel" chin) and deepens
# the depression below the lower lip; the mentalis inserts into the chin skin, Hur et al. 2013,
# Clin Anat 26:567): dimples over the chin boss and the mentolabial furrow, each side as deep as
# its chin raise (phi chin_raise_l / _r). Without them the rig's chin raise moved the chin boss
# 3 mm and drew nothing: free faces showed it to no encoder (issue 23: held-out r 0.29 / 0.40,
# training fit 0.48 / 0.55, every other component >= 0.62 / 0.83).
CHIN_RAISE_INDEX = {side: PHI_LABELS.index(f"chin_raise_{side}") for side in ("l", "r")}
CHIN_RAISE_FULL = 2.0  # chin_raise at full mentalis activation (muscle_map: ~3.1 tanh(2.5/3.1))
CHIN_BOSS_M = (0.0, -0.073, 0.016, 0.010)  # dimpled region: centre x, y and half-axes (template)
CHIN_DIMPLE_PERIOD_M = 0.004  # a dimple every ~4 mm
CHIN_DIMPLE_DEPTH = 0.5  # albedo drop at the bottom of a dimple at full chin raise
MENTOLABIAL_FURROW_M = (-0.060, 0.0025, 0.016)  # the furrow's y, half-height, half-width
MENTOLABIAL_FURROW_DEPTH = 0.5  # albedo drop along the furrow at full chin raise
# Bumped when a change to the drawing changes rendered pixels: caches of rendered faces
# (training.face_pairs) carry it in their key, so none made before the change is reused.
RIG_VERSION = 2  # 2: the chin of AU17


def electrode_sites_m(scheme_name: str) -> tuple[list[str], np.ndarray]:
    """Electrode centres ``(n, 2)`` (x, y) in the head frame for a scheme: one per monopolar
    channel, two ~10 mm apart per bipolar channel; and the channel label of each.

    The scheme's face frame (x = +-0.8 at the face outline, y = 0 on the Frankfort horizontal,
    chin ~-0.9, forehead ~0.8) is mapped onto the head: x * 0.075 m, y * 0.07 m above and
    y * 0.11 m below a Frankfort line at 12 mm (the eyes sit at 30 mm).
    """
    scheme = load_scheme(scheme_name)
    labels, sites = [], []
    for channel in scheme.channels:
        x_e, y_e = channel.position
        x = 0.075 * x_e
        y = 0.012 + y_e * (0.07 if y_e > 0 else 0.11)
        if scheme.montage == "bipolar":
            vertical = abs(x) < 0.012 or y > 0.04  # forehead / midline pairs run vertically
            d = np.array([0.0, 0.0045]) if vertical else np.array([0.0045, 0.0])
            for sign in (-1, 1):
                labels.append(channel.label)
                sites.append(np.array([x, y]) + sign * d)
        else:
            labels.append(channel.label)
            sites.append(np.array([x, y]))
    return labels, np.asarray(sites)


ELECTRODE_STEP_M = 0.00025  # medial step of a channel whose site is off a narrow face
ELECTRODE_MAX_SHIFT_M = 0.015


def _embed_electrodes(
    verts: np.ndarray, faces: np.ndarray, front: np.ndarray, labels: list[str], sites: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Triangle and barycentric coordinates of each electrode site ``(n, 2)`` on the front
    triangles ``front`` of the participant's neutral head ``verts``.

    The sites are fixed (x, y) in metres, but the identity shapes the head: on a narrow face the
    outer masseter electrodes (x ~ +-57 mm, 11 mm inside the template's outline at y = -43 mm)
    lie on the side of the jaw or beyond the head's outline. A channel with an electrode off the
    front moves medially, at the same height and with its pair spacing, in 0.25 mm steps until
    both lie on the front (up to ~4 mm in seeds 1000-2999). Sites on the front stay exactly put.
    """
    tri, bary = embed_points(verts, faces, front, sites, missing_ok=True)
    names = np.asarray(labels)
    for label in dict.fromkeys(names[tri < 0]):
        rows = np.flatnonzero(names == label)
        medial = np.array([-np.sign(sites[rows, 0].mean()), 0.0])
        for k in range(1, round(ELECTRODE_MAX_SHIFT_M / ELECTRODE_STEP_M) + 1):
            moved = sites[rows] + k * ELECTRODE_STEP_M * medial
            t, b = embed_points(verts, faces, front, moved, missing_ok=True)
            if (t >= 0).all():
                tri[rows], bary[rows] = t, b
                break
        else:
            raise RuntimeError(
                f"electrode {label} at {sites[rows].round(4).tolist()} m is off this face, even "
                f"{ELECTRODE_MAX_SHIFT_M * 1e3:.0f} mm towards the midline"
            )
    return tri, bary


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered camera frame and what the truth stream reports about it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    face_box: np.ndarray  # (4,) x, y, w, h in frame pixels (the face-mask vertices' bounds)
    electrodes_px: np.ndarray  # (n, 2) electrode centres in frame pixels (empty: no occlusion)
    electrodes_visible: np.ndarray  # (n,) bool: facing the camera, so drawn
    electrode_radius_px: float
    scale_px_per_m: float
    landmarks_px: np.ndarray  # (51, 2) iBUG-68 points 17..67 (FLAME's static set), frame pixels


class ParticipantRenderer:
    """Frames of one participant; ``render(state_row)`` draws one :class:`FaceState` row.

    Parameters
    ----------
    traits : ParticipantTraits
        The participant's looks (face shape, skin, noise level).
    width, height : int
        Frame size in pixels.
    face_px : int
        Side of the square the face region is rendered at before scaling (speed vs. detail).
    occlusion : str | None
        Electrode scheme whose electrodes are drawn on the face; None, "" or "none": none.
    cables : bool
        Draw the electrode leads.
    sensor_noise : bool
        Add camera sensor noise around the face.
    """

    def __init__(
        self,
        traits: ParticipantTraits,
        width: int = 1280,
        height: int = 720,
        *,
        face_px: int = 224,
        occlusion: str | None = None,
        cables: bool = True,
        sensor_noise: bool = True,
    ) -> None:
        self.traits, self.width, self.height = traits, width, height
        self.face_px, self.cables, self.sensor_noise = face_px, cables, sensor_noise
        arrays = make_synthetic_head()
        # the identity is fixed: bake it into the template (the per-frame blend has 50 terms)
        shaped = dict(arrays)
        shaped["v_template"] = arrays["v_template"] + np.einsum(
            "vcl,l->vc", arrays["shapedirs"][:, :, :300], traits.shape
        )
        self.flame = FLAME(shaped, n_shape=1, n_exp=N_EXPRESSION).eval()
        self._shape = torch.zeros(1, 1)
        with torch.no_grad():
            neutral = self.flame(shape=self._shape).vertices[0].numpy()
        n_skin = int(np.flatnonzero(arrays["weights"][:, 3:].sum(1) > 0)[0])
        faces = np.asarray(arrays["f"])
        self._faces_np = faces[(faces < n_skin).all(1)]  # the skin (eyeballs stay hidden)
        self._faces = torch.as_tensor(self._faces_np)
        # texture coordinates: the unshaped head, where the landmarks, eye sockets and eyelids are
        # defined, so the painted brows, eyes and lips sit on the true landmarks of every identity
        self._template = np.asarray(arrays["v_template"], np.float32)
        self._mask_face = np.asarray(arrays["mask_face"])
        self._lmk_vertices = faces[np.asarray(arrays["lmk_faces_idx"])]  # (51, 3)
        self._lmk_bary = np.asarray(arrays["lmk_bary_coords"], np.float32)
        self._texture = _paint_texture(traits)
        self._background = _paint_background(traits, width, height)
        self._noise_rng_key = traits.seed
        rng = np.random.default_rng([traits.seed, 77])
        self._noise = [
            np.clip(rng.normal(0, traits.noise_sd, (face_px * 2, face_px * 2, 3)), -8, 8).astype(
                np.int16
            )
            for _ in range(4)
        ]
        self.occlusion = occlusion if occlusion not in (None, "", "none") else None
        self.electrode_labels: list[str] = []
        # where each electrode sits on this participant's neutral face, (n, 2) x, y in metres:
        # its scheme site (electrode_sites_m), or that moved medially on a narrow face
        self.electrode_xy_m = np.zeros((0, 2))
        self._electrode_tri = np.zeros(0, np.int64)
        self._electrode_bary = np.zeros((0, 3), np.float32)
        if self.occlusion is not None:
            labels, sites = electrode_sites_m(self.occlusion)
            tri_front = np.zeros(faces.shape[0], bool)
            front = neutral[:, 2] > 0.02
            tri_front[: len(faces)] = front[faces].all(1) & (faces < n_skin).all(1)
            self._electrode_tri, self._electrode_bary = _embed_electrodes(
                neutral, faces, tri_front, labels, sites
            )
            self._electrode_faces = faces
            self.electrode_xy_m = np.einsum(
                "nk,nkc->nc", self._electrode_bary, neutral[faces[self._electrode_tri], :2]
            )
            self.electrode_labels = labels

    # -- geometry --------------------------------------------------------------------------------
    def _vertices(self, state: FaceState, i: int) -> np.ndarray:
        phi = torch.as_tensor(state.phi[i : i + 1], dtype=torch.float32)
        with torch.no_grad():
            out = self.flame(
                shape=self._shape,
                expression=phi[:, :N_EXPRESSION],
                eyelid=phi[:, N_EXPRESSION : N_EXPRESSION + 2],
                jaw=phi[:, JAW_INDEX : JAW_INDEX + 3],
                pose=torch.as_tensor(state.rotation[i : i + 1], dtype=torch.float32),
            )
        return out.vertices[0].numpy()

    def placement(self, state: FaceState, i: int) -> tuple[float, float, float]:
        """Head centre (px) and scale (px per metre) in the frame for state row ``i``."""
        scale = self.traits.head_height_frac * self.height / HEAD_HEIGHT_M * float(state.zoom[i])
        cx = float(state.centre_frac[i, 0]) * self.width
        cy = float(state.centre_frac[i, 1]) * self.height
        return cx, cy, scale

    def render(self, state: FaceState, i: int = 0) -> RenderedFrame:
        verts = self._vertices(state, i)
        cx, cy, scale = self.placement(state, i)
        S = self.face_px
        k = S / CROP_M  # crop pixels per metre
        pix = np.empty((len(verts), 2), np.float32)
        pix[:, 0] = (verts[:, 0] - HEAD_CENTRE_M[0]) * k + S / 2
        pix[:, 1] = -(verts[:, 1] - HEAD_CENTRE_M[1]) * k + S / 2
        # back-face culling (the head is closed towards the camera): half the triangles go
        tri = pix[self._faces_np]
        area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (
            tri[:, 2, 0] - tri[:, 0, 0]
        ) * (tri[:, 1, 1] - tri[:, 0, 1])
        faces = self._faces_np[area < 0]
        tri_id = rasterize(
            torch.as_tensor(pix[None]), torch.as_tensor(-verts[None, :, 2]),
            torch.as_tensor(faces), S, S,
        )[0].numpy()  # fmt: skip
        rows, cols = np.nonzero(tri_id >= 0)
        f = faces[tri_id[rows, cols]]
        bary = _barycentric(np.stack([cols, rows], 1) + 0.5, pix[f])
        crop = np.zeros((S, S, 3), np.float32)
        if len(rows):
            tex_xyz = np.einsum("nk,nkc->nc", bary, self._template[f])
            albedo = self._albedo(tex_xyz, state.phi[i])
            normals = _vertex_normals(verts, self._faces_np)
            lambert = np.clip(normals @ self.traits.light_direction, 0.0, 1.0)
            shade_v = self.traits.ambient + lambert
            shade = np.einsum("nk,nk->n", bary, shade_v[f])
            crop[rows, cols] = albedo * shade[:, None] * self.traits.light_rgb * 1.35
        alpha = (tri_id >= 0).astype(np.float32)
        frame = self._composite(crop, alpha, cx, cy, scale / k)
        face = verts[self._mask_face]
        fx = cx + (face[:, 0] - HEAD_CENTRE_M[0]) * scale
        fy = cy - (face[:, 1] - HEAD_CENTRE_M[1]) * scale
        box = np.array([fx.min(), fy.min(), fx.max() - fx.min(), fy.max() - fy.min()])
        lmk = np.einsum("lk,lkc->lc", self._lmk_bary, verts[self._lmk_vertices])
        lmk_px = np.stack(
            [
                cx + (lmk[:, 0] - HEAD_CENTRE_M[0]) * scale,
                cy - (lmk[:, 1] - HEAD_CENTRE_M[1]) * scale,
            ],
            1,
        )
        electrodes_px = np.zeros((0, 2))
        visible = np.zeros(0, bool)
        radius = ELECTRODE_COLLAR_M * scale
        if self.occlusion is not None:
            electrodes_px, visible = self._draw_electrodes(frame, verts, cx, cy, scale, box)
        if self.sensor_noise:
            self._add_noise(frame, cx, cy, scale, round(float(state.t_s[i]) * 30))
        return RenderedFrame(frame, box, electrodes_px, visible, radius, scale, lmk_px)

    # -- appearance ------------------------------------------------------------------------------
    def _albedo(self, xyz: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Albedo (n, 3) at template points: the painted texture, hair on the back and top,
        and the upper eyelids lowered by the eyelid parameters."""
        tex = self._texture
        u = ((xyz[:, 0] - _TEX_X[0]) / _TEX_M_PER_PX).astype(np.int32)
        v = ((_TEX_Y[1] - xyz[:, 1]) / _TEX_M_PER_PX).astype(np.int32)
        np.clip(u, 0, tex.shape[1] - 1, out=u)
        np.clip(v, 0, tex.shape[0] - 1, out=v)
        albedo = tex[v, u]
        back = (xyz[:, 2] < 0.035) & (xyz[:, 1] > -0.02)  # sides and back above the ears
        albedo[back] = self.traits.hair_rgb
        skin_lid = self.traits.skin_rgb * 0.9
        for side, (ex, ey) in zip(("l", "r"), EYE_CENTRES_M, strict=True):
            closure = float(np.clip(phi[EYELID_INDEX[side]], 0.0, 1.0))
            dx = (xyz[:, 0] - ex) / _EYE_HALF_M[0]
            dy = (xyz[:, 1] - ey) / _EYE_HALF_M[1]
            inside = dx * dx + dy * dy < 1.0
            lid_edge = 1.0 - 2.0 * closure  # dy above this is covered by the upper lid
            covered = inside & (dy > lid_edge)
            albedo[covered] = skin_lid
            edge = inside & (np.abs(dy - lid_edge) < 0.18)
            albedo[edge] = self.traits.hair_rgb * 0.6  # lash line
        _darken_forehead_lines(albedo, xyz, phi)
        _dimple_chin(albedo, xyz, phi)
        return albedo

    def _composite(
        self, crop: np.ndarray, alpha: np.ndarray, cx: float, cy: float, zoom: float
    ) -> np.ndarray:
        """The background with the crop scaled by ``zoom`` and centred at (cx, cy)."""
        frame = self._background.copy()
        size = max(2, round(self.face_px * zoom))
        x0 = round(cx - size / 2)
        y0 = round(cy - size / 2)
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + size, self.width), min(y0 + size, self.height)
        if xa >= xb or ya >= yb:
            return frame
        # scale in 8 bits (small), blend with OpenCV: the frame-sized work stays cheap
        small = (np.clip(crop, 0.0, 1.0) * 255.0).astype(np.uint8)
        big = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        a = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_LINEAR)
        a = cv2.GaussianBlur(a, (3, 3), 0)[ya - y0 : yb - y0, xa - x0 : xb - x0]
        big = np.ascontiguousarray(big[ya - y0 : yb - y0, xa - x0 : xb - x0])
        roi = np.ascontiguousarray(frame[ya:yb, xa:xb])
        frame[ya:yb, xa:xb] = cv2.blendLinear(big, roi, np.ascontiguousarray(a), 1.0 - a)
        return frame

    def _add_noise(self, frame: np.ndarray, cx: float, cy: float, scale: float, n: int) -> None:
        noise = self._noise[n % len(self._noise)]
        h, w = noise.shape[:2]
        x0, y0 = max(int(cx - w / 2), 0), max(int(cy - h / 2), 0)
        x1, y1 = min(x0 + w, self.width), min(y0 + h, self.height)
        roi = frame[y0:y1, x0:x1]
        roi[:] = np.clip(roi.astype(np.int16) + noise[: y1 - y0, : x1 - x0], 0, 255)

    def _draw_electrodes(
        self, frame: np.ndarray, verts: np.ndarray, cx: float, cy: float, scale: float,
        box: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        tri = self._electrode_faces[self._electrode_tri]  # (n, 3)
        points = np.einsum("nk,nkc->nc", self._electrode_bary, verts[tri])
        normals = np.cross(verts[tri[:, 1]] - verts[tri[:, 0]], verts[tri[:, 2]] - verts[tri[:, 0]])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        visible = normals[:, 2] > 0.15
        px = np.stack(
            [cx + (points[:, 0] - HEAD_CENTRE_M[0]) * scale,
             cy - (points[:, 1] - HEAD_CENTRE_M[1]) * scale], 1,
        )  # fmt: skip
        collar = max(1, round(ELECTRODE_COLLAR_M * scale))
        disc = max(1, round(ELECTRODE_DISC_M * scale))
        shift = 4  # fixed-point bits for sub-pixel drawing
        if self.cables:  # each lead runs sideways off the face, then down to the shoulder
            lines = []
            for (x, y), ok in zip(px, visible, strict=True):
                if not ok:
                    continue
                side = 1.0 if x >= cx else -1.0
                edge_x = cx + side * (0.5 * box[2] + 0.01 * scale)
                pts = np.array(
                    [[x, y], [edge_x, y + 0.01 * scale], [cx + side * 0.09 * scale,
                     box[1] + box[3] + 0.15 * scale]]
                )  # fmt: skip
                lines.append(np.round(np.clip(pts, -1e4, 1e4) * (1 << shift)).astype(np.int32))
            if lines:
                width = max(1, round(0.0012 * scale))
                cv2.polylines(frame, lines, False, (45, 45, 50), width, cv2.LINE_AA, shift)
        for (x, y), ok in zip(px, visible, strict=True):
            if not ok:
                continue
            centre = (round(x * (1 << shift)), round(y * (1 << shift)))
            cv2.circle(frame, centre, collar << shift, (236, 236, 230), -1, cv2.LINE_AA, shift)
            cv2.circle(frame, centre, disc << shift, (150, 150, 155), -1, cv2.LINE_AA, shift)
        return px, visible


def _side_levels(phi: np.ndarray, index: dict[str, int], full: float) -> tuple[float, float]:
    """(left, right) of a one-sided phi pair (``index`` by side), as fractions of ``full``."""
    left, right = (float(np.clip(phi[index[side]] / full, 0.0, 1.0)) for side in ("l", "r"))
    return left, right


def _blend_sides(x: np.ndarray, levels: tuple[float, float], blend_m: float) -> np.ndarray:
    """Each point's level at template x: the left's at +x (the person's left, FLAME), the
    right's at -x, blended linearly across ``blend_m`` at the midline."""
    left = np.clip(0.5 + x / blend_m, 0.0, 1.0)
    return left * levels[0] + (1.0 - left) * levels[1]


def _darken_forehead_lines(albedo: np.ndarray, xyz: np.ndarray, phi: np.ndarray) -> None:
    """Darken the forehead furrows in ``albedo`` (n, 3) at template points ``xyz``, in place;
    each side as deep as its brow raise, blended across the midline."""
    levels = _side_levels(phi, BROW_RAISE_INDEX, BROW_RAISE_FULL)
    if max(levels) < 1e-3:
        return
    y0, y1 = FOREHEAD_LINES_Y_M
    band = (xyz[:, 1] > y0) & (xyz[:, 1] < y1) & (np.abs(xyz[:, 0]) < 0.06) & (xyz[:, 2] > 0)
    x, y = xyz[band, 0], xyz[band, 1]
    strength = _blend_sides(x, levels, blend_m=0.02)
    furrow = np.cos(np.pi * (y - y0 - 3.0 * x * x) / FOREHEAD_LINE_PERIOD_M) ** 4  # arched lines
    fade = np.sin(np.pi * (y - y0) / (y1 - y0)) * np.exp(-0.5 * (x / 0.035) ** 4)  # to the edges
    albedo[band] *= (1.0 - FOREHEAD_LINE_DEPTH * strength * furrow * fade)[:, None]


def _dimple_chin(albedo: np.ndarray, xyz: np.ndarray, phi: np.ndarray) -> None:
    """Darken the chin boss's dimples and the mentolabial furrow in ``albedo`` (n, 3) at
    template points ``xyz``, in place; each side as deep as its chin raise, blended across the
    midline."""
    levels = _side_levels(phi, CHIN_RAISE_INDEX, CHIN_RAISE_FULL)
    if max(levels) < 1e-3:
        return
    cx, cy, ax, ay = CHIN_BOSS_M
    fy, fh, fw = MENTOLABIAL_FURROW_M
    region = (xyz[:, 1] < fy + 3 * fh) & (xyz[:, 1] > cy - 2 * ay) & (np.abs(xyz[:, 0]) < 0.03)
    region &= xyz[:, 2] > 0
    x, y = xyz[region, 0], xyz[region, 1]
    strength = _blend_sides(x, levels, blend_m=0.008)  # a narrow chin
    period = CHIN_DIMPLE_PERIOD_M
    dimples = (np.cos(np.pi * (x - cx) / period) * np.cos(np.pi * (y - cy) / period)) ** 2
    boss = np.exp(-0.5 * (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2) ** 2)  # flat-topped
    furrow = np.exp(-0.5 * ((y - fy - 0.002 * (x / fw) ** 2) / fh) ** 2)  # arcs up to the sides
    furrow *= np.exp(-0.5 * (x / fw) ** 4)
    drop = CHIN_DIMPLE_DEPTH * dimples * boss + MENTOLABIAL_FURROW_DEPTH * furrow
    albedo[region] *= (1.0 - np.clip(strength * drop, 0.0, 0.9))[:, None]


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (as :func:`eifer_models.renderer.vertex_normals`),
    accumulated with ``bincount`` (a few times faster than ``index_add`` for one mesh)."""
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(verts)
    for k in range(3):
        for c in range(3):
            n[:, c] += np.bincount(faces[:, k], fn[:, c], minlength=len(verts))
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _barycentric(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1 - w1 - w2, w1, w2], 1).astype(np.float32)


def _tex_px(x: float, y: float) -> tuple[int, int]:
    return int((x - _TEX_X[0]) / _TEX_M_PER_PX), int((_TEX_Y[1] - y) / _TEX_M_PER_PX)


def _paint_texture(traits: ParticipantTraits) -> np.ndarray:
    """Albedo texture (H, W, 3) float32 over the head's frontal template (x, y)."""
    w = round((_TEX_X[1] - _TEX_X[0]) / _TEX_M_PER_PX)
    h = round((_TEX_Y[1] - _TEX_Y[0]) / _TEX_M_PER_PX)
    rng = np.random.default_rng([traits.seed, 5])
    blotch: np.ndarray = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 12)
    blotch /= max(float(blotch.std()), 1e-6)
    pores = rng.normal(0, 1, (h, w)).astype(np.float32)
    tex = np.ones((h, w, 3), np.float32) * traits.skin_rgb.astype(np.float32)
    tex *= (1.0 + 0.04 * blotch + 0.025 * pores)[..., None]
    # warm cheeks
    yy, xx = np.mgrid[0:h, 0:w]
    for sx in (1, -1):
        u, v = _tex_px(sx * 0.042, -0.012)
        g = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 30.0**2)).astype(np.float32)
        tex *= 1.0 - 0.12 * g[..., None] * np.array([0.0, 1.0, 1.0], np.float32)
    px = lambda pts: np.array([_tex_px(x, y) for x, y in pts], np.int32)  # noqa: E731
    lm = LANDMARK_XY  # iBUG 17..67 -> index - 17
    hair = tuple(float(c) for c in traits.hair_rgb)
    lip = tuple(float(c) for c in traits.lip_rgb)
    thickness = int(0.0032 / _TEX_M_PER_PX)
    cv2.polylines(tex, [px(lm[0:5]), px(lm[5:10])], False, hair, thickness, cv2.LINE_AA)
    # hairline: the forehead above ~75 mm
    hairline = np.array([[x, 0.074 + 0.25 * x * x] for x in np.linspace(-0.09, 0.09, 40)])
    top = np.concatenate([px(hairline), [[w - 1, 0], [0, 0]]]).astype(np.int32)
    cv2.fillPoly(tex, [top], hair)
    cv2.fillPoly(tex, [px(lm[31:43])], lip)  # outer lip contour, iBUG 48..59
    cv2.polylines(tex, [px(lm[43:51])], True, (0.25 * lip[0], 0.1 * lip[1], 0.1 * lip[2]), 3)
    for sx in (1, -1):  # nostrils
        u, v = _tex_px(sx * 0.0065, -0.0165)
        cv2.ellipse(tex, (u, v), (6, 3), 0, 0, 360, (0.15, 0.08, 0.07), -1, cv2.LINE_AA)
    for ex, ey in EYE_CENTRES_M:  # open eyes: sclera, iris, pupil, lower lid line
        u, v = _tex_px(ex, ey)
        axes = (int(_EYE_HALF_M[0] / _TEX_M_PER_PX), int(_EYE_HALF_M[1] / _TEX_M_PER_PX))
        cv2.ellipse(tex, (u, v), axes, 0, 0, 360, (0.92, 0.9, 0.88), -1, cv2.LINE_AA)
        iris = tuple(float(c) for c in traits.iris_rgb)
        cv2.circle(tex, (u, v), int(0.0055 / _TEX_M_PER_PX), iris, -1, cv2.LINE_AA)
        cv2.circle(tex, (u, v), int(0.0022 / _TEX_M_PER_PX), (0.03, 0.03, 0.03), -1, cv2.LINE_AA)
        cv2.ellipse(tex, (u, v), axes, 0, 0, 180, (0.35, 0.25, 0.22), 2, cv2.LINE_AA)
    return np.clip(tex, 0.0, 1.0)


def _paint_background(traits: ParticipantTraits, width: int, height: int) -> np.ndarray:
    """Wall (vertical gradient), neck and shoulders below the head's rest position."""
    top, bottom = traits.background_rgb
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    bg = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1), np.float32)
    cx = traits.centre_frac[0] * width
    cy = traits.centre_frac[1] * height
    scale = traits.head_height_frac * height / HEAD_HEIGHT_M
    skin = tuple(float(c) * 0.8 for c in traits.skin_rgb)
    neck_w, neck_top = 0.04 * scale, cy + 0.05 * scale
    cv2.rectangle(
        bg, (int(cx - neck_w), int(neck_top)), (int(cx + neck_w), int(cy + 0.16 * scale)), skin, -1
    )
    shirt = tuple(float(c) for c in traits.shirt_rgb)
    cv2.ellipse(
        bg, (int(cx), int(cy + 0.30 * scale)), (int(0.23 * scale), int(0.15 * scale)), 0, 180,
        360, shirt, -1, cv2.LINE_AA,
    )  # fmt: skip
    cv2.rectangle(bg, (int(cx - 0.23 * scale), int(cy + 0.30 * scale)),
                  (int(cx + 0.23 * scale), height), shirt, -1)  # fmt: skip
    return (np.clip(bg, 0, 1) * 255).astype(np.uint8)
