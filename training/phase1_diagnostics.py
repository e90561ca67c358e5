"""Do phase 1's generators carry expression? Measured on held-out pairs with the truth.

EIFER's CNS cycle teaches the occluded-face encoder ``E_s`` to see past electrodes only through
faces that ``G_s`` draws from a render of ``E_n``'s parameters: if a generated face does not show
the rendered expression, ``E_s`` learns from noise. This module feeds each generator the render
of the *true* parameters of held-out frames (plus the appearance pixels phase 1 would give it)
and asks the encoders to read the expression back (Pearson r over the driven phi components, as
``training.encoder_runs.phi_scores``). The truth is used for this evaluation only, never in
training. Measured on the CPU recipe (issue 23): r 0.00-0.04 for every generator and encoder
while ``E_n`` reads the real free faces at 0.45, so the cycles had nothing to teach ``E_s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eifer_models.encoders import N_EXP, FaceEncoder, FlameParams
from eifer_models.generator import EiferGenerator, generator_input
from eifer_models.masking import dilation_px, generator_pixels
from training.encoder_runs import crop_images, encoder_phi, phi_scores
from training.face_model import FaceModel
from training.face_pairs import FacePairs

__all__ = ["generator_transfer", "truth_params"]


def truth_params(
    pairs: FacePairs, n_exp: int = N_EXP, device: torch.device | None = None
) -> FlameParams:
    """The rig's true FLAME parameters of ``pairs`` (phi = expression, eyelids 2, jaw 3)."""
    phi = torch.as_tensor(pairs.phi, device=device)
    return FlameParams(
        pose_params=torch.as_tensor(pairs.rotation, device=device),
        cam=torch.as_tensor(pairs.cam, device=device),
        shape_params=torch.as_tensor(pairs.shape, device=device),
        expression_params=phi[:, :n_exp],
        eyelid_params=phi[:, n_exp : n_exp + 2],
        jaw_params=phi[:, n_exp + 2 : n_exp + 5],
    )


@torch.no_grad()
def generator_transfer(
    g_n: EiferGenerator, g_s: EiferGenerator, e_n: FaceEncoder, e_s: FaceEncoder,
    face: FaceModel, held: FacePairs, pixel_fraction: float, batch: int = 64, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Mean r of the expression read back from generated faces, per (generator, reader), and
    the encoders on the real crops for reference; networks in eval mode, on their device.
    ``G_n from free pixels`` is ``G_n``'s plain redrawing of a free face: whether it draws
    expression at all, apart from removing electrodes."""
    for net in (g_n, g_s, e_n, e_s):
        net.eval()
    device = next(g_n.parameters()).device

    size = held.free.shape[1]
    # the phase-1 cases share one pixel draw; the redrawing has its own, so adding it left
    # theirs as they were
    g, g_own = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    cases = {
        "G_n read by E_n": (g_n, held.occluded, e_n, g),  # CSN: electrodes removed
        "G_s read by E_s": (g_s, held.free, e_s, g),  # CNS: what E_s is taught with
        "G_n from free pixels read by E_n": (g_n, held.free, e_n, g_own),
    }
    phi: dict[str, list[np.ndarray]] = {name: [] for name in cases}
    for start in range(0, len(held), batch):
        rows = np.arange(start, min(start + batch, len(held)))
        render = face.render(truth_params(held.select(rows), device=device))
        for name, (gen, crops, reader, rng) in cases.items():
            px = generator_pixels(
                crop_images(crops[rows], device), render.coverage, fraction=pixel_fraction,
                dilation_radius_px=dilation_px(size), generator=rng,
            )  # fmt: skip
            drawn = gen(generator_input(render.image, px.appearance, px.sample_mask))
            phi[name].append(reader(drawn).phi.cpu().numpy())
    real = {
        "E_n on real free faces": (e_n, held.free),
        "E_s on real faces under electrodes": (e_s, held.occluded),
    }
    out: dict[str, Any] = {"pixel_fraction": pixel_fraction, "frames": len(held)}
    for name, parts in phi.items():
        out[f"{name} (true render)"] = phi_scores(np.concatenate(parts), held.phi)["mean_r"]
    for name, (encoder, crops) in real.items():
        out[name] = phi_scores(encoder_phi(encoder, crops, device, batch), held.phi)["mean_r"]
    return out
