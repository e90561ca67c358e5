"""``eifer flame convert``: a user's FLAME 2020 pickle as the ``.npz`` the project loads.

FLAME is licence-gated and never shipped; its ``generic_model.pkl`` is read without chumpy by a
restricted unpickler (:mod:`eifer_models.flame_io`), and the ``.npz`` it writes is what the
display's ``head_model`` and :meth:`eifer_models.flame.FLAME.from_npz` load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nodes.common import OptionArguments, add_option_config_arguments, load_option_config

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pkl", type=Path, help="FLAME's generic_model.pkl")
    parser.add_argument("npz", type=Path, help="the .npz to write")
    options = OptionArguments(parser)
    options.add_argument(
        "--eyelids", nargs=2, type=Path, metavar=("L_EYELID", "R_EYELID"),
        help="SMIRK's l_eyelid.npy and r_eyelid.npy",
    )  # fmt: skip
    options.add_argument(
        "--masks", type=Path, help="FLAME_masks.pkl (its 'face' set picks the drawn triangles)"
    )
    options.add_argument("--landmarks", type=Path, help="landmark embedding npz (MediaPipe layout)")
    add_option_config_arguments(options, example='masks="FLAME_masks.pkl"')


def run(args: argparse.Namespace) -> int:
    from eifer_models import flame_io

    load_option_config(args)
    out = flame_io.convert(
        args.pkl, args.npz, eyelids=args.eyelids, masks_path=args.masks,
        landmarks_path=args.landmarks,
    )  # fmt: skip
    arrays = flame_io.load_npz(out)
    print(f"wrote {out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()))
    return 0
