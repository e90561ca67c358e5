"""FLAME face model layer (Li et al., SIGGRAPH Asia 2017), batched and differentiable.

Same semantics as the FLAME layer used by SMIRK/DECA (``src/FLAME/FLAME.py``, ``lbs.py``):
shape components 0..299 and expression components from index 300 of ``shapedirs``; pose
corrective blendshapes from ``(R[1:] - I)``; linear blend skinning over the 5-joint tree
(root/global, neck, jaw, left eye, right eye) with axis-angle (Rodrigues) rotations; SMIRK's
eyelid blendshapes added after skinning, in model space, unrotated. Device and dtype follow the
inputs. Arrays come from :mod:`eifer_models.flame_io` (a user's FLAME 2020 converted to npz, or
the generated :mod:`eifer_models.synthetic_head`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from eifer_models import flame_io

log = logging.getLogger(__name__)
N_SHAPE_MODEL = 300  # FLAME 2020 stores 300 identity components before the expression ones
N_JOINTS = 5  # root, neck, jaw, left eye, right eye


@dataclass(frozen=True)
class FlameOutput:
    """Posed mesh: ``vertices`` (B,V,3), ``joints`` (B,5,3), ``landmarks`` (B,L,3) or None."""

    vertices: Tensor
    joints: Tensor
    landmarks: Tensor | None


def split_phi(phi: Tensor, n_exp: int = 50) -> tuple[Tensor, Tensor, Tensor]:
    """Split SMIRK/EIFER's expression vector into (expression, eyelid, jaw).

    Order as sliced by SMIRK's expression head: exp(n_exp), eyelid(2), jaw(3).
    """
    return phi[..., :n_exp], phi[..., n_exp : n_exp + 2], phi[..., n_exp + 2 : n_exp + 5]


def rodrigues(rot_vecs: Tensor, eps: float = 1e-8) -> Tensor:
    """Axis-angle (N,3) -> rotation matrices (N,3,3); smooth at zero (angle = sqrt(|r|^2+eps^2))."""
    angle = torch.sqrt((rot_vecs * rot_vecs).sum(-1, keepdim=True) + eps * eps)  # (N,1)
    axis = rot_vecs / angle
    x, y, z = axis.unbind(-1)
    zeros = torch.zeros_like(x)
    K = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device).expand_as(K)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    return eye + s * K + (1 - c) * (K @ K)


def rigid_transforms(
    rot_mats: Tensor, joints: Tensor, parents: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Forward kinematics. rot_mats (B,J,3,3), rest joints (B,J,3) ->
    (posed joints (B,J,3), skinning transforms relative to the rest pose (B,J,4,4))."""
    B, J = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, list(parents[1:])]
    top = torch.cat([rot_mats, rel[..., None]], dim=-1)  # (B,J,3,4)
    bottom = top.new_zeros(B, J, 1, 4)
    bottom[..., 3] = 1
    local = torch.cat([top, bottom], dim=-2)
    chain = [local[:, 0]]
    for i in range(1, J):
        chain.append(chain[parents[i]] @ local[:, i])
    world = torch.stack(chain, dim=1)  # (B,J,4,4)
    posed_joints = world[..., :3, 3]
    offset = (world[..., :3, :3] @ joints[..., None])[..., 0]
    rel_world = torch.cat([world[..., :3, :3], (posed_joints - offset)[..., None]], dim=-1)
    return posed_joints, torch.cat([rel_world, world[..., 3:, :]], dim=-2)


class FLAME(nn.Module):
    """FLAME layer: (shape, expression, eyelid, jaw, pose[, neck, eyes]) -> posed vertices.

    ``arrays`` is the dict of :func:`eifer_models.flame_io.flame_arrays`. Buffers follow
    ``.to(device)``; every forward also casts them to the inputs' dtype.
    """

    # buffers (register_buffer), declared for the type checker
    v_template: Tensor
    shapedirs: Tensor
    posedirs: Tensor
    J_regressor: Tensor
    lbs_weights: Tensor
    faces: Tensor
    face_triangles: Tensor
    l_eyelid: Tensor
    r_eyelid: Tensor
    lmk_faces_idx: Tensor
    lmk_bary_coords: Tensor

    def __init__(
        self, arrays: Mapping[str, np.ndarray], n_shape: int = 300, n_exp: int = 50
    ) -> None:
        super().__init__()
        shapedirs = np.asarray(arrays["shapedirs"])
        n_model_exp = shapedirs.shape[2] - N_SHAPE_MODEL
        if not (0 < n_shape <= N_SHAPE_MODEL and 0 < n_exp <= n_model_exp):
            raise flame_io.FlameFileError(
                f"the model has {min(shapedirs.shape[2], N_SHAPE_MODEL)} shape and "
                f"{max(n_model_exp, 0)} expression components; asked for {n_shape} and {n_exp}"
            )
        if arrays["J_regressor"].shape[0] != N_JOINTS:
            raise flame_io.FlameFileError(
                f"FLAME needs {N_JOINTS} joints, the model has {arrays['J_regressor'].shape[0]}"
            )
        self.n_shape, self.n_exp = n_shape, n_exp
        V = arrays["v_template"].shape[0]
        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        dirs = np.concatenate(
            [shapedirs[:, :, :n_shape], shapedirs[:, :, N_SHAPE_MODEL : N_SHAPE_MODEL + n_exp]], 2
        )
        posedirs = np.asarray(arrays["posedirs"])
        parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        if np.any(parents[1:] >= np.arange(1, N_JOINTS)) or np.any(parents[1:] < 0):
            raise flame_io.FlameFileError(
                f"kintree_table parents {parents.tolist()} are not a tree"
            )
        self.register_buffer("v_template", f32(arrays["v_template"]))
        self.register_buffer("shapedirs", f32(dirs))  # (V,3,n_shape+n_exp)
        self.register_buffer("posedirs", f32(posedirs.reshape(-1, posedirs.shape[2]).T))  # (36,V*3)
        self.register_buffer("J_regressor", f32(arrays["J_regressor"]))
        self.register_buffer("lbs_weights", f32(arrays["weights"]))
        self.parents: list[int] = parents.tolist()  # host-side: no device sync in the chain loop
        self.register_buffer("faces", torch.as_tensor(np.asarray(arrays["f"], dtype=np.int64)))
        self.register_buffer("face_triangles", torch.as_tensor(flame_io.face_triangles(arrays)))
        zeros = np.zeros((V, 3), np.float32)
        self.has_eyelids = "l_eyelid" in arrays and "r_eyelid" in arrays
        self._warned_eyelids = False
        self.register_buffer("l_eyelid", f32(arrays.get("l_eyelid", zeros)))
        self.register_buffer("r_eyelid", f32(arrays.get("r_eyelid", zeros)))
        self.has_landmarks = "lmk_faces_idx" in arrays
        self.register_buffer(
            "lmk_faces_idx", torch.as_tensor(arrays.get("lmk_faces_idx", np.zeros(0, np.int64)))
        )
        self.register_buffer(
            "lmk_bary_coords", f32(arrays.get("lmk_bary_coords", np.zeros((0, 3))))
        )

    @classmethod
    def from_npz(cls, path: str | Path, n_shape: int = 300, n_exp: int = 50) -> FLAME:
        """Load a FLAME npz written by :func:`eifer_models.flame_io.save_npz`."""
        return cls(flame_io.load_npz(path), n_shape=n_shape, n_exp=n_exp)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @staticmethod
    def _fit(x: Tensor | None, B: int, n: int, ref: Tensor) -> Tensor:
        """Zero-pad (SMIRK) or check a (B,<=n) parameter tensor; None -> zeros."""
        if x is None:
            return ref.new_zeros(B, n)
        if x.ndim != 2 or x.shape[0] != B or x.shape[1] > n:
            raise ValueError(f"expected a parameter tensor (B={B}, <={n}), got {tuple(x.shape)}")
        return nn.functional.pad(x, (0, n - x.shape[1])) if x.shape[1] < n else x

    def forward(
        self,
        shape: Tensor | None = None,
        expression: Tensor | None = None,
        eyelid: Tensor | None = None,
        jaw: Tensor | None = None,
        pose: Tensor | None = None,
        neck: Tensor | None = None,
        eyes: Tensor | None = None,
    ) -> FlameOutput:
        """shape (B,<=n_shape), expression (B,<=n_exp), eyelid (B,2: left, right), jaw/pose/neck
        (B,3) axis-angle, eyes (B,6: left, right). Missing ones are zero."""
        given = [t for t in (shape, expression, eyelid, jaw, pose, neck, eyes) if t is not None]
        if not given:
            raise ValueError("FLAME.forward needs at least one parameter tensor (for batch/device)")
        ref = given[0]
        if not ref.is_floating_point():
            raise TypeError(f"FLAME parameters must be floating point, got {ref.dtype}")
        B, dtype = ref.shape[0], ref.dtype
        buf = lambda t: t.to(device=ref.device, dtype=dtype)  # noqa: E731
        betas = torch.cat(
            [self._fit(shape, B, self.n_shape, ref), self._fit(expression, B, self.n_exp, ref)], 1
        )
        full_pose = torch.cat(
            [self._fit(p, B, n, ref) for p, n in ((pose, 3), (neck, 3), (jaw, 3), (eyes, 6))], 1
        ).view(B, N_JOINTS, 3)

        v_shaped = buf(self.v_template) + torch.einsum("bl,vcl->bvc", betas, buf(self.shapedirs))
        joints = torch.einsum("jv,bvc->bjc", buf(self.J_regressor), v_shaped)
        rot = rodrigues(full_pose.reshape(-1, 3)).view(B, N_JOINTS, 3, 3)
        eye3 = torch.eye(3, dtype=dtype, device=ref.device)
        pose_feature = (rot[:, 1:] - eye3).reshape(B, -1)
        v_posed = v_shaped + (pose_feature @ buf(self.posedirs)).view(B, -1, 3)
        posed_joints, A = rigid_transforms(rot, joints, self.parents)
        T = torch.einsum("vj,bjmn->bvmn", buf(self.lbs_weights), A)
        verts = (T[..., :3, :3] @ v_posed[..., None])[..., 0] + T[..., :3, 3]
        if eyelid is not None:
            if not self.has_eyelids and not self._warned_eyelids:
                self._warned_eyelids = True
                log.warning(
                    "this FLAME model has no eyelid blendshapes: eyelid parameters are ignored "
                    "(convert with --eyelids l_eyelid.npy r_eyelid.npy from SMIRK's assets)"
                )
            e = self._fit(eyelid, B, 2, ref)
            verts = (
                verts
                + e[:, 0, None, None] * buf(self.l_eyelid)
                + e[:, 1, None, None] * buf(self.r_eyelid)
            )
        return FlameOutput(
            verts, posed_joints, self.landmarks(verts) if self.has_landmarks else None
        )

    def landmarks(self, vertices: Tensor) -> Tensor:
        """Barycentric landmark positions (B,L,3) on the posed mesh (static embedding)."""
        tri = vertices[:, self.faces[self.lmk_faces_idx]]  # (B,L,3,3)
        return (tri * self.lmk_bary_coords.to(vertices.dtype)[None, :, :, None]).sum(2)
