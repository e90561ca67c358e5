"""The manifest of a model bundle (``manifest.json``): its schema, and reading and checking it.

What needs no model code lives here: the format constants, the pydantic schema of the manifest,
:func:`read_manifest` (format, version, schema), :func:`check_shapes` (the declared dimensions
agree with each other) and :func:`check_files` (every file present, its sha256 as listed).
:mod:`eifer_models.bundle` builds on it: writing bundles, checking the ONNX graphs and weights
against the manifest, and building the torch modules.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eifer_models.face_detection.crop import CropSpec
from eifer_models.mlp import N_EMG
from eifer_models.runtimes.base import TensorSpec
from streaming.errors import BundleError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GRAPHS",
    "IMAGE_NORMALISATION",
    "MANIFEST",
    "GraphEntry",
    "Manifest",
    "SpecModel",
    "check_files",
    "check_shapes",
    "default_emg_channels",
    "emg_normalisation_entry",
    "read_manifest",
    "sha256_file",
]

FORMAT = "eifer-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPHS = ("encoders", "emg2exp", "exp2emg")
IMAGE_NORMALISATION = {
    "layout": "NCHW",
    "color": "RGB",
    "size": [224, 224],
    "range": [0.0, 1.0],
    "mean": None,  # SMIRK demo.py only divides by 255
    "std": None,
    "crop": "see the manifest's crop (mode smirk: SMIRK crop_face; eifer: BlazeFace box)",
}


def emg_normalisation_entry(method: Any = None) -> dict[str, Any]:
    """``input_normalisation.emg``: the declared method
    (``streaming.pipeline.profile.Normalisation``; default the profile's default) the MLPs' EMG was
    normalised with; the pipeline refuses a participant profile made with another method."""
    from streaming.pipeline.profile import Normalisation

    method = method or Normalisation()
    return {
        "method": method.model_dump(),
        "description": f"envelope divided by the participant's {method.describe()} from the "
        "calibration recording (EIFER: 'maximum measured activity'); Exp2EMG output times the "
        "profile = microvolts",
    }


def default_emg_channels() -> list[str]:
    """``F1`` .. ``F22``: the bipolar Fridlund channels (Fridlund & Cacioppo 1986)."""
    return [f"F{i}" for i in range(1, N_EMG + 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpecModel(_Strict):
    """One declared graph input or output: name, shape (None: any size), dtype."""

    name: str
    shape: list[int | None]
    dtype: str = "float32"


class GraphEntry(_Strict):
    """One graph: its files, constructor config and declared inputs/outputs."""

    weights: str
    onnx: str | None = None
    onnx_fp16: str | None = None
    config: dict[str, Any]
    inputs: list[SpecModel]
    outputs: list[SpecModel]

    def specs(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        def conv(items: list[SpecModel]) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(s.name, tuple(s.shape), s.dtype) for s in items)

        return conv(self.inputs), conv(self.outputs)


class Manifest(_Strict):
    """The contents of ``manifest.json`` (unknown keys are an error, as in configs)."""

    format: str = FORMAT
    format_version: int
    producer: str
    created: str
    trained: bool
    description: str = ""
    expression_dim: int = Field(gt=0)
    n_exp: int = Field(gt=0)
    n_shape: int = Field(gt=0)
    emg_channels: list[str] = Field(min_length=1)
    feature: dict[str, Any]
    crop: CropSpec = Field(default_factory=CropSpec)  # absent in old bundles: eifer, x1.6
    input_normalisation: dict[str, Any]
    graphs: dict[str, GraphEntry]
    files: dict[str, str]
    training: dict[str, Any] = Field(default_factory=dict)  # provenance: data, epochs, metrics


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> Manifest:
    """``path/manifest.json`` validated: format, version, schema; BundleError names the key."""
    file = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"bundle folder not found: {path}")
    if not file.is_file():
        raise BundleError(f"{file}: missing; not a model bundle (create one with save_bundle)")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{file}: top level must be an object")
    if data.get("format", FORMAT) != FORMAT:
        raise BundleError(f"{file}: format {data.get('format')!r} is not {FORMAT!r}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{file}: format_version {version!r} not supported (this code reads {FORMAT_VERSION})"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise BundleError(f"{file}: invalid manifest: {problems}") from None


def check_shapes(path: Path, m: Manifest) -> None:
    """The declared dimensions agree: expression = n_exp + 5, every graph's I/O shapes, the
    encoders' square input of the crop's size (224 for SMIRK's; any for the compact one)."""
    dim, n_emg = m.expression_dim, len(m.emg_channels)
    where = path / MANIFEST
    if dim != m.n_exp + 5:
        raise BundleError(f"{where}: expression_dim {dim} != n_exp {m.n_exp} + 5 (eyelid 2, jaw 3)")
    missing = [g for g in GRAPHS if g not in m.graphs]
    if missing:
        raise BundleError(f"{where}: graphs {missing} missing")
    expected = {
        ("encoders", "inputs", "image"): [1, 3, m.crop.size, m.crop.size],
        ("encoders", "outputs", "pose"): [1, 6],
        ("encoders", "outputs", "shape"): [1, m.n_shape],
        ("encoders", "outputs", "expression"): [1, dim],
        ("emg2exp", "inputs", "emg"): [1, n_emg],
        ("emg2exp", "outputs", "expression"): [1, dim],
        ("exp2emg", "inputs", "expression"): [1, dim],
        ("exp2emg", "outputs", "emg"): [1, n_emg],
    }
    for (graph, kind, name), shape in expected.items():
        specs = {s.name: s for s in getattr(m.graphs[graph], kind)}
        if name not in specs:
            raise BundleError(f"{where}: graphs.{graph}.{kind} lacks {name!r}")
        if specs[name].shape != shape:
            raise BundleError(
                f"{where}: graphs.{graph}.{kind}.{name} shape {specs[name].shape}, expected {shape}"
            )


def check_files(path: Path, m: Manifest) -> None:
    """Every graph file has a checksum, every listed file exists and matches its sha256."""
    referenced = set()
    for name, entry in m.graphs.items():
        for file in (entry.weights, entry.onnx, entry.onnx_fp16):
            if file is None:
                continue
            referenced.add(file)
            if file not in m.files:
                raise BundleError(
                    f"{path / MANIFEST}: graphs.{name} file {file!r} has no checksum in 'files'"
                )
    for file, digest in m.files.items():
        full = path / file
        if not full.is_file():
            raise BundleError(f"{full}: missing (listed in manifest files)")
        actual = sha256_file(full)
        if actual != digest:
            raise BundleError(
                f"{full}: sha256 {actual[:12]}... does not match the manifest ({digest[:12]}...); "
                "the file is corrupt or was changed after the bundle was written"
            )
