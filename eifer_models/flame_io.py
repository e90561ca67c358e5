"""Read a user's FLAME 2020 model without chumpy, and convert it to a plain ``.npz``.

The official ``generic_model.pkl`` (flame.is.tue.mpg.de, licence-gated, never shipped) is a
Python-2 pickle holding numpy arrays, ``chumpy.ch.Ch`` objects (v_template, shapedirs,
posedirs, weights) and a ``scipy.sparse`` matrix (J_regressor). SMIRK/DECA unpickle it with
chumpy installed; here a restricted unpickler maps every chumpy class to a plain numpy array
(its ``x`` state), rebuilds sparse matrices from their state and refuses every other class, so
a hostile file cannot run code. The ``.npz`` written by :func:`convert` is what
:meth:`eifer_models.flame.FLAME.from_npz` loads (the synthetic head uses the same layout).

Command: ``eifer flame convert generic_model.pkl flame2020.npz [--eyelids l_eyelid.npy
r_eyelid.npy] [--masks FLAME_masks.pkl] [--landmarks emb.npz]`` (:mod:`nodes.flame`).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from streaming.errors import BundleError

FORMAT_TAG = "eifer-flame-npz-1"
REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
)
OPTIONAL_KEYS = ("l_eyelid", "r_eyelid", "lmk_faces_idx", "lmk_bary_coords", "mask_face")

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTINS = {"object", "set", "frozenset", "slice"}  # constructors that run no code
_SPARSE_FORMATS = {"csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr"}


class FlameFileError(BundleError):
    """A FLAME model file is missing, unreadable, unsafe or lacks a required array."""


class _ChumpyStandIn:
    """Takes the place of any ``chumpy`` class while unpickling; keeps only its state."""

    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_array(self) -> np.ndarray:
        state = self.state
        if isinstance(state, Mapping) and "x" in state:
            return np.asarray(state["x"])
        raise pickle.UnpicklingError(
            "a chumpy object without a plain value 'x' (an unevaluated chumpy expression); "
            "re-save the model with chumpy's values evaluated"
        )


class _SparseStandIn:
    """Takes the place of a scipy csc/csr matrix while unpickling; rebuilt from its state."""

    fmt = "csc"
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_array(self) -> np.ndarray:
        s = self.state
        if not isinstance(s, Mapping) or not {"data", "indices", "indptr"} <= set(s):
            raise pickle.UnpicklingError("a sparse matrix without data/indices/indptr")
        shape = tuple(int(n) for n in s.get("_shape", s.get("shape", ())))
        cls = scipy.sparse.csc_matrix if self.fmt == "csc" else scipy.sparse.csr_matrix
        mat = cls((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])), shape)
        return mat.toarray()


def _sparse_class(fmt: str) -> type[_SparseStandIn]:
    return type(f"_Sparse_{fmt}", (_SparseStandIn,), {"fmt": fmt})


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """Safe ``copyreg._reconstructor`` (protocol 0/1 pickles): only for our stand-ins."""
    if not (isinstance(cls, type) and issubclass(cls, _ChumpyStandIn | _SparseStandIn)):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return cls.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows numpy arrays/dtypes, maps chumpy and scipy sparse to stand-ins
    and refuses every other global (e.g. ``os.system``, ``builtins.eval``)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _sparse_class(_SPARSE_FORMATS[name])
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if (
            module == "_codecs" and name == "encode"
        ):  # bytes in protocol 0-2 pickles (as torch allows)
            return super().find_class(module, name)
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a model file")


def _plain(value: Any) -> Any:
    """Replace stand-ins by numpy arrays, recursively through dicts/lists."""
    if isinstance(value, _ChumpyStandIn | _SparseStandIn):
        return value.to_array()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def restricted_loads(data: bytes) -> Any:
    """Unpickle bytes with :class:`RestrictedUnpickler` (latin1 for Python-2 pickles)."""
    return _plain(RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load())


def load_pickle(path: str | Path) -> dict[str, Any]:
    """Load a FLAME-style pickle (dict of arrays, chumpy, sparse) as a dict of numpy arrays."""
    path = Path(path)
    try:
        obj = restricted_loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise FlameFileError(f"FLAME model file {path} not found") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as exc:
        raise FlameFileError(f"cannot read {path} as a FLAME pickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise FlameFileError(f"{path} holds a {type(obj).__name__}, expected a dict of arrays")
    return obj


def _face_triangles(f: np.ndarray, face_vertices: np.ndarray) -> np.ndarray:
    inside = np.zeros(int(f.max()) + 1, dtype=bool)
    inside[face_vertices] = True
    return np.flatnonzero(inside[f].all(axis=1))


def flame_arrays(
    model: Mapping[str, Any],
    *,
    l_eyelid: np.ndarray | None = None,
    r_eyelid: np.ndarray | None = None,
    mask_face: np.ndarray | None = None,
    lmk_faces_idx: np.ndarray | None = None,
    lmk_bary_coords: np.ndarray | None = None,
    source: str = "model",
) -> dict[str, np.ndarray]:
    """Check and normalise FLAME arrays to the npz layout (float32/int64, dense J_regressor).

    ``mask_face`` is a vertex index set (FLAME_masks['face']); the renderer draws only the
    triangles whose three vertices are all in it (SMIRK's rule).
    """
    missing = [k for k in REQUIRED_KEYS if k not in model]
    if missing:
        raise FlameFileError(f"{source} lacks required FLAME arrays {missing}")
    out: dict[str, np.ndarray] = {}
    for key in ("v_template", "shapedirs", "posedirs", "weights"):
        out[key] = np.asarray(model[key], dtype=np.float32)
    jreg = model["J_regressor"]
    jreg = jreg.toarray() if scipy.sparse.issparse(jreg) else np.asarray(jreg)
    out["J_regressor"] = jreg.astype(np.float32)
    kintree = np.asarray(model["kintree_table"]).astype(np.int64)
    if kintree.ndim == 2 and kintree.size:
        kintree[0, 0] = -1  # FLAME stores the root's parent as uint32 2**32-1
    out["kintree_table"] = kintree
    out["f"] = np.asarray(model["f"]).astype(np.int64)
    V = out["v_template"].shape[0]
    checks = {
        "v_template": out["v_template"].shape == (V, 3),
        "shapedirs": out["shapedirs"].ndim == 3 and out["shapedirs"].shape[:2] == (V, 3),
        "posedirs": out["posedirs"].ndim == 3 and out["posedirs"].shape[:2] == (V, 3),
        "J_regressor": out["J_regressor"].ndim == 2 and out["J_regressor"].shape[1] == V,
        "weights": out["weights"].ndim == 2 and out["weights"].shape[0] == V,
        "f": out["f"].ndim == 2 and out["f"].shape[1] == 3 and int(out["f"].max()) < V,
    }
    n_joints = out["J_regressor"].shape[0]
    checks["kintree_table"] = out["kintree_table"].shape == (2, n_joints)
    checks["weights"] = checks["weights"] and out["weights"].shape[1] == n_joints
    checks["posedirs"] = checks["posedirs"] and out["posedirs"].shape[2] == 9 * (n_joints - 1)
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        shapes = {k: tuple(out[k].shape) for k in bad}
        raise FlameFileError(f"{source}: arrays with inconsistent shapes {shapes} (V={V})")
    for key, value in (("l_eyelid", l_eyelid), ("r_eyelid", r_eyelid)):
        if value is None and key in model:
            value = model[key]
        if value is not None:
            arr = np.asarray(value, dtype=np.float32)
            if arr.shape != (V, 3):
                raise FlameFileError(f"{source}: {key} has shape {arr.shape}, expected ({V}, 3)")
            out[key] = arr
    if mask_face is None and "mask_face" in model:
        mask_face = model["mask_face"]
    if mask_face is not None:
        out["mask_face"] = np.asarray(mask_face).astype(np.int64).ravel()
    if lmk_faces_idx is None and "lmk_faces_idx" in model:
        lmk_faces_idx, lmk_bary_coords = model["lmk_faces_idx"], model.get("lmk_bary_coords")
    if lmk_faces_idx is not None:
        idx = np.asarray(lmk_faces_idx).astype(np.int64).ravel()
        bary = np.asarray(lmk_bary_coords, dtype=np.float32).reshape(-1, 3)
        if idx.shape[0] != bary.shape[0] or (idx.size and int(idx.max()) >= out["f"].shape[0]):
            raise FlameFileError(f"{source}: landmark embedding does not fit the mesh")
        out["lmk_faces_idx"], out["lmk_bary_coords"] = idx, bary
    return out


def face_triangles(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Triangle indices drawn by the renderer: all three vertices in ``mask_face`` (all if absent)."""
    f = np.asarray(arrays["f"])
    if "mask_face" not in arrays:
        return np.arange(f.shape[0])
    return _face_triangles(f, np.asarray(arrays["mask_face"]))


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write FLAME arrays (as returned by :func:`flame_arrays`) to a compressed ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(
        f".{path.name}.{os.getpid()}.tmp.npz"
    )  # atomic: readers never see half a file
    try:
        named: dict[str, Any] = dict(arrays)  # Any: numpy's stub types **kwds as its own flags
        np.savez_compressed(tmp, format=np.array(FORMAT_TAG), **named)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read a FLAME ``.npz`` (no pickles allowed) and check it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except FileNotFoundError as exc:
        raise FlameFileError(f"FLAME npz {path} not found; convert the FLAME pickle first") from exc
    except (ValueError, OSError) as exc:
        raise FlameFileError(f"cannot read {path} as a FLAME npz: {exc}") from exc
    tag = str(raw.pop("format", ""))
    if tag != FORMAT_TAG:
        raise FlameFileError(
            f"{path} is not an EIFER FLAME npz (format {tag!r}, want {FORMAT_TAG})"
        )
    return flame_arrays(raw, source=str(path))


def load_landmark_embedding(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Landmark embedding as (faces_idx (L,), bary (L,3)).

    Reads SMIRK's MediaPipe embedding ``.npz`` (``lmk_face_idx``, ``lmk_b_coords``) or a plain
    npz with ``lmk_faces_idx``/``lmk_bary_coords``. (SMIRK's ``landmark_embedding.npy`` holds
    torch tensors inside a pickle and is not read here.)
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        for idx_key, bary_key in (
            ("lmk_face_idx", "lmk_b_coords"),
            ("lmk_faces_idx", "lmk_bary_coords"),
        ):
            if idx_key in data.files and bary_key in data.files:
                return data[idx_key].astype(np.int64).ravel(), data[bary_key].astype(np.float32)
    raise FlameFileError(f"{path} has no landmark embedding (lmk_face_idx + lmk_b_coords)")


def convert(
    pkl_path: str | Path,
    npz_path: str | Path,
    *,
    eyelids: tuple[str | Path, str | Path] | None = None,
    masks_path: str | Path | None = None,
    landmarks_path: str | Path | None = None,
) -> Path:
    """Convert a FLAME pickle (plus SMIRK's eyelid ``.npy``, FLAME_masks.pkl and a landmark
    embedding, where given) to the ``.npz`` that :meth:`FLAME.from_npz` loads."""
    model = load_pickle(pkl_path)
    extra: dict[str, Any] = {}
    if eyelids is not None:
        extra["l_eyelid"] = np.load(eyelids[0], allow_pickle=False)
        extra["r_eyelid"] = np.load(eyelids[1], allow_pickle=False)
    if masks_path is not None:
        masks = load_pickle(masks_path)
        if "face" not in masks:
            raise FlameFileError(f"{masks_path} has no 'face' vertex mask (keys {sorted(masks)})")
        extra["mask_face"] = masks["face"]
    if landmarks_path is not None:
        extra["lmk_faces_idx"], extra["lmk_bary_coords"] = load_landmark_embedding(landmarks_path)
    return save_npz(npz_path, flame_arrays(model, source=str(pkl_path), **extra))
