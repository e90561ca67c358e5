"""The head mesh for the page: a FLAME-layout model turned into a linear basis over ``phi``.

The page draws ``v = template + B @ phi`` per frame (phi = 50 expression + 2 eyelid + 3 jaw,
EIFER's 55-d vector, split as in :func:`eifer_models.flame.split_phi`). Expression and eyelid
blendshapes are linear in FLAME; the jaw rotation is not, so its three columns are the
derivative of the FLAME layer at zero jaw pose (central difference, ``jaw_step_rad``): exact for
the blendshapes, a first-order approximation for the jaw that is close for the small jaw angles
of facial movements (~0.1-0.3 rad). Sending the basis once (``/head.bin``) and 55 numbers per
frame costs far less than per-frame vertices (a FLAME mesh has 5023 x 3 coordinates).

Binary layout of ``/head.bin`` (little-endian): float32 template (V*3), float32 basis
(n_components blocks of V*3), uint32 triangles (T*3); sizes in the JSON from :func:`head_meta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HeadMesh", "head_from_arrays", "load_head"]

N_EXP = 50
N_PHI = 55


@dataclass(frozen=True)
class HeadMesh:
    template: np.ndarray  # (V, 3) float32, centred and scaled to about -1..1
    basis: np.ndarray  # (N_PHI, V, 3) float32 in the same scaled units
    triangles: np.ndarray  # (T, 3) uint32, face-region triangles only
    source: str

    def meta(self) -> dict[str, Any]:
        return {
            "n_vertices": int(self.template.shape[0]),
            "n_triangles": int(self.triangles.shape[0]),
            "n_components": int(self.basis.shape[0]),
            "source": self.source,
        }

    def to_bytes(self) -> bytes:
        return b"".join(
            (
                self.template.astype("<f4").tobytes(),
                self.basis.astype("<f4").tobytes(),
                self.triangles.astype("<u4").tobytes(),
            )
        )

    def vertices(self, phi: np.ndarray) -> np.ndarray:
        """What the page computes: ``template + basis . phi`` (for tests and pictures)."""
        phi = np.asarray(phi, dtype=np.float32)[: self.basis.shape[0]]
        return self.template + np.tensordot(phi, self.basis[: phi.shape[0]], axes=1)


def load_head(spec: str | Path, jaw_step_rad: float = 0.05) -> HeadMesh:
    """``"synthetic"`` (the project's generated head) or a FLAME npz path, linearised over phi.

    Raises :class:`eifer_models.flame_io.FlameFileError` (a BundleError) naming the file.
    """
    from eifer_models import flame_io

    if str(spec) == "synthetic":
        from eifer_models.synthetic_head import make_synthetic_head

        return head_from_arrays(make_synthetic_head(), "synthetic head", jaw_step_rad)
    return head_from_arrays(flame_io.load_npz(spec), str(spec), jaw_step_rad)


def head_from_arrays(
    arrays: dict[str, np.ndarray], source: str, jaw_step_rad: float = 0.05
) -> HeadMesh:
    """Linearise FLAME arrays (:func:`eifer_models.flame_io.flame_arrays`) over phi."""
    import torch

    from eifer_models import flame_io
    from eifer_models.flame import FLAME, split_phi

    model = FLAME(arrays, n_shape=1, n_exp=N_EXP)
    step = np.full(N_PHI, 1.0, dtype=np.float32)
    step[N_EXP + 2 :] = jaw_step_rad
    eye = torch.diag(torch.from_numpy(step))
    with torch.no_grad():
        out = []
        for sign in (1.0, -1.0):
            exp, eyelid, jaw = split_phi(sign * eye, N_EXP)
            out.append(model(expression=exp, eyelid=eyelid, jaw=jaw).vertices)
        zero = model(expression=torch.zeros(1, N_EXP)).vertices[0].numpy()
    basis = ((out[0] - out[1]).numpy() / (2.0 * step[:, None, None])).astype(np.float32)
    centre = 0.5 * (zero.max(axis=0) + zero.min(axis=0))
    scale = 2.0 / float(np.ptp(zero[:, :2], axis=0).max() or 1.0)
    template = ((zero - centre) * scale).astype(np.float32)
    triangles = np.asarray(arrays["f"])[flame_io.face_triangles(arrays)].astype(np.uint32)
    return HeadMesh(template, basis * np.float32(scale), triangles, source)
