"""Restricted FLAME pickle reading, the pickle -> npz converter and the npz loader."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from eifer_models import flame_io
from eifer_models.flame import FLAME
from eifer_models.synthetic_head import make_synthetic_head
from nodes import cli


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def _fake_chumpy(monkeypatch: pytest.MonkeyPatch) -> type:
    """A stand-in ``chumpy.ch.Ch`` (value in ``x`` plus chumpy's bookkeeping) importable for pickling."""
    pkg = types.ModuleType("chumpy")
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = np.asarray(x, dtype=np.float64)
            self.dterms = ("x",)
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    mod.Ch = Ch
    pkg.ch = mod
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", mod)
    return Ch


def _flame_like_pickle(
    path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> dict[str, np.ndarray]:
    """Write the synthetic head the way the official FLAME pkl stores it: chumpy for the dense
    arrays, scipy csc for J_regressor, uint32 kintree with 2**32-1 as the root's parent."""
    arrays = make_synthetic_head()
    Ch = _fake_chumpy(monkeypatch)
    model = {
        "v_template": Ch(arrays["v_template"]),
        "shapedirs": Ch(arrays["shapedirs"]),
        "posedirs": Ch(arrays["posedirs"]),
        "weights": Ch(arrays["weights"]),
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)),
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "f": arrays["f"].astype(np.uint32),
        "bs_style": "lbs",
    }
    path.write_bytes(pickle.dumps(model, protocol=protocol))
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    return arrays


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_restricted_unpickler_reads_chumpy_and_sparse_without_chumpy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> None:
    pkl = tmp_path / "generic_model.pkl"
    arrays = _flame_like_pickle(pkl, monkeypatch, protocol)
    assert "chumpy" not in sys.modules
    model = flame_io.load_pickle(pkl)
    np.testing.assert_allclose(model["v_template"], arrays["v_template"], atol=1e-7)
    np.testing.assert_allclose(model["shapedirs"], arrays["shapedirs"], atol=1e-7)
    np.testing.assert_allclose(model["J_regressor"], arrays["J_regressor"], atol=1e-7)
    assert model["bs_style"] == "lbs"


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": _Evil(target)}))
    with pytest.raises(
        flame_io.FlameFileError, match=r"refusing to load global (posix|nt|os)\.system"
    ):
        flame_io.load_pickle(pkl)
    assert not target.exists()


def test_restricted_unpickler_refuses_builtins_eval(tmp_path: Path) -> None:
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps([_EvalEvil()]))
    with pytest.raises(flame_io.FlameFileError, match=r"builtins\.eval"):
        flame_io.load_pickle(pkl)


def test_chumpy_expression_without_value_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Ch = _fake_chumpy(monkeypatch)
    obj = Ch(np.zeros(3))
    del obj.x
    pkl = tmp_path / "expr.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": obj}))
    with pytest.raises(flame_io.FlameFileError, match="chumpy"):
        flame_io.load_pickle(pkl)


def test_convert_pickle_to_npz_round_trip_gives_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkl = tmp_path / "generic_model.pkl"
    arrays = _flame_like_pickle(pkl, monkeypatch, protocol=2)
    np.save(tmp_path / "l_eyelid.npy", arrays["l_eyelid"].astype(np.float64))
    np.save(tmp_path / "r_eyelid.npy", arrays["r_eyelid"].astype(np.float64))
    (tmp_path / "masks.pkl").write_bytes(
        pickle.dumps({"face": arrays["mask_face"], "lips": np.arange(3)})
    )
    np.savez(
        tmp_path / "mp.npz",
        lmk_face_idx=arrays["lmk_faces_idx"].astype(np.uint32),
        lmk_b_coords=arrays["lmk_bary_coords"],
    )
    out = tmp_path / "flame.npz"
    rc = cli.main(
        ["flame", "convert", str(pkl), str(out), "--eyelids", str(tmp_path / "l_eyelid.npy"), str(tmp_path / "r_eyelid.npy"),
         "--masks", str(tmp_path / "masks.pkl"), "--landmarks", str(tmp_path / "mp.npz")]
    )  # fmt: skip
    assert rc == 0
    loaded = flame_io.load_npz(out)
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_allclose(loaded[key], value, atol=1e-7, err_msg=key)
    a, b = FLAME(arrays), FLAME.from_npz(out)
    params = {
        "expression": torch.randn(2, 50),
        "jaw": torch.full((2, 3), 0.1),
        "eyelid": torch.rand(2, 2),
    }
    torch.testing.assert_close(a(**params).vertices, b(**params).vertices)
    torch.testing.assert_close(a(**params).landmarks, b(**params).landmarks)


def test_npz_loader_refuses_pickled_objects_and_foreign_files(tmp_path: Path) -> None:
    bad = tmp_path / "objects.npz"
    np.savez(
        bad, format=np.array(flame_io.FORMAT_TAG), v_template=np.array([{"a": 1}], dtype=object)
    )
    with pytest.raises(flame_io.FlameFileError, match="cannot read"):
        flame_io.load_npz(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(flame_io.FlameFileError, match="not an EIFER FLAME npz"):
        flame_io.load_npz(foreign)
    with pytest.raises(flame_io.FlameFileError, match="not found"):
        flame_io.load_npz(tmp_path / "missing.npz")


def test_missing_or_inconsistent_arrays_are_named() -> None:
    arrays = make_synthetic_head()
    partial = {k: v for k, v in arrays.items() if k != "posedirs"}
    with pytest.raises(flame_io.FlameFileError, match="posedirs"):
        flame_io.flame_arrays(partial)
    broken = dict(arrays, weights=arrays["weights"][:, :4])
    with pytest.raises(flame_io.FlameFileError, match="weights"):
        flame_io.flame_arrays(broken)
    with pytest.raises(flame_io.FlameFileError, match="l_eyelid"):
        flame_io.flame_arrays(arrays, l_eyelid=np.zeros((5, 3)))
