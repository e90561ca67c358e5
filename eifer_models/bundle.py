"""Model bundles: one folder with everything the live pipeline needs to run EIFER's models.

Layout (DESIGN.md, "Model bundles")::

    <bundle>/manifest.json              format version, producer, trained flag, dimensions,
                                        EMG channels, EMG feature definition, input
                                        normalisation, graphs (files, inputs, outputs),
                                        sha256 of every file
    <bundle>/<graph>.safetensors        weights of encoders / emg2exp / exp2emg
    <bundle>/<graph>.onnx               float32 ONNX graphs (encoders_fp16.onnx: FP16 variant)
    <bundle>/engines/<gpu>-trt<ver>/    TensorRT plans built on a GPU (not checksummed: built
                                        per machine, each with its own sidecar)

``load_bundle`` verifies the format version, every checksum, the dimensions (those three in
:mod:`eifer_models.bundle_manifest`, with the manifest's schema), the ONNX inputs and outputs and
the weight shapes, and raises :class:`~streaming.errors.BundleError` naming the file and field at
fault. ``create_demo_bundle`` writes randomly initialised (seeded) models,
marked ``"trained": false`` in the manifest, for tests (``eifer demo`` runs the trained MLPs of
:mod:`eifer_models.demo_weights` with untrained encoders).

Slightly past the house's ~450 lines: writing, verifying and loading share the manifest's
checksum and fit checks, which belong together.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from pydantic import ValidationError
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from eifer_models.bundle_manifest import (
    FORMAT,
    FORMAT_VERSION,
    GRAPHS,
    IMAGE_NORMALISATION,
    MANIFEST,
    GraphEntry,
    Manifest,
    check_files,
    check_shapes,
    default_emg_channels,
    emg_normalisation_entry,
    read_manifest,
    sha256_file,
)
from eifer_models.encoders import N_EXP, N_SHAPE, FaceEncoder, build_encoder
from eifer_models.export import EncoderGraph, export_encoders, export_mlp, onnx_io
from eifer_models.face_detection.crop import CropSpec
from eifer_models.mlp import DEFAULT_HIDDEN, MLP, EMG2Exp, Exp2EMG
from eifer_models.runtimes.base import TensorSpec
from streaming.config import ConfigError
from streaming.errors import BundleError

__all__ = [
    "FORMAT_VERSION",
    "GRAPHS",
    "Bundle",
    "GraphEntry",
    "Manifest",
    "create_demo_bundle",
    "default_emg_channels",
    "load_bundle",
    "save_bundle",
    "sha256_file",
]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder; builds the torch modules and names the files runtimes need."""

    path: Path
    manifest: Manifest

    @property
    def trained(self) -> bool:
        return self.manifest.trained

    @property
    def engines_root(self) -> Path:
        return self.path / "engines"

    def graph(self, name: str) -> GraphEntry:
        if name not in self.manifest.graphs:
            raise BundleError(
                f"{self.path / MANIFEST}: no graph {name!r} (has {sorted(self.manifest.graphs)})"
            )
        return self.manifest.graphs[name]

    def onnx_path(self, name: str, fp16: bool = False) -> Path | None:
        entry = self.graph(name)
        file = entry.onnx_fp16 if fp16 else entry.onnx
        return self.path / file if file else None

    def io(self, name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        return self.graph(name).specs()

    def feature_definition(self) -> Any:
        """The :class:`streaming.pipeline.features.FeatureDefinition` the MLPs were trained on."""
        from streaming.pipeline.features import FeatureDefinition

        try:
            return FeatureDefinition.from_dict(
                self.manifest.feature, f"{self.path / MANIFEST} feature"
            )
        except ConfigError as exc:
            raise BundleError(str(exc)) from None

    def emg_normalisation(self) -> Any:
        """The declared :class:`streaming.pipeline.profile.Normalisation` of the MLPs' EMG (None for
        a bundle written before the method was declared)."""
        from streaming.pipeline.profile import Normalisation

        method = self.manifest.input_normalisation.get("emg", {}).get("method")
        if method is None:
            return None
        try:
            return Normalisation.from_dict(method, f"{self.path / MANIFEST} emg normalisation")
        except ConfigError as exc:
            raise BundleError(str(exc)) from None

    def _empty_module(self, name: str) -> nn.Module:
        config = self.graph(name).config
        try:
            if name == "encoders":
                return build_encoder(config)
            if name == "emg2exp":
                return EMG2Exp(**config)
            if name == "exp2emg":
                return Exp2EMG(**config)
        except (TypeError, ValueError) as exc:
            raise BundleError(
                f"{self.path / MANIFEST}: graphs.{name}.config {config}: {exc}"
            ) from None
        raise BundleError(f"{self.path / MANIFEST}: unknown graph {name!r}")

    def build_module(self, name: str) -> nn.Module:
        """The graph's torch module in eval mode with the bundle's weights (for ``encoders`` the
        tuple-output :class:`~eifer_models.export.EncoderGraph`)."""
        module = self._empty_module(name)
        weights = self.path / self.graph(name).weights
        from safetensors.torch import load_file

        state = load_file(str(weights))
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"{weights}: does not fit graph {name!r}: {exc}") from None
        module.eval()
        return EncoderGraph(module) if isinstance(module, FaceEncoder) else module

    def summary(self) -> str:
        state = "trained" if self.trained else "UNTRAINED (random weights)"
        m = self.manifest
        return (
            f"bundle {self.path} ({state}, expression dim {m.expression_dim}, "
            f"{len(m.emg_channels)} EMG channels, producer {m.producer})"
        )


def _spec_dicts(shapes: Mapping[str, Sequence[int]]) -> list[dict[str, Any]]:
    return [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in shapes.items()]


def save_bundle(
    path: str | Path,
    encoder: FaceEncoder,
    emg2exp: MLP,
    exp2emg: MLP,
    *,
    emg_channels: Sequence[str],
    feature: Any,
    trained: bool,
    producer: str,
    description: str = "",
    fp16_onnx: bool = True,
    overwrite: bool = False,
    training: Mapping[str, Any] | None = None,
    crop: CropSpec | Mapping[str, Any] | None = None,
    emg_normalisation: Any = None,
) -> Bundle:
    """Write weights, ONNX graphs and the manifest into a folder; return the verified bundle.

    Parameters
    ----------
    path : str | Path
        The bundle folder; created if absent.
    encoder : FaceEncoder
        The face encoders (SMIRK's three MobileNetV3 or the compact network), exported as one
        ONNX graph (and an FP16 variant); their ``config()`` (architecture, input size) goes
        into the manifest.
    emg2exp, exp2emg : MLP
        The phase-2 MLPs; they must map ``len(emg_channels)`` <-> ``encoder.expression_dim``.
    emg_channels : sequence of str
        The EMG channel labels the MLPs read and write, in order.
    feature : FeatureDefinition | Mapping
        The EMG feature the MLP inputs were computed with (``streaming.pipeline.features``), or its
        dict.
    trained : bool
        False marks random weights: the pipeline then labels every prediction as meaningless.
    producer : str
        Who wrote the bundle (kept in the manifest).
    description : str
        Free text kept in the manifest.
    fp16_onnx : bool
        Also export ``encoders_fp16.onnx`` (TensorRT >= 11 builds FP16 engines from it).
    overwrite : bool
        Replace a non-empty ``path``; without it a non-empty folder is an error.
    training : Mapping | None
        JSON-compatible provenance (data, epochs, metrics) kept in the manifest.
    crop : CropSpec | Mapping | None
        The face crop the encoders were trained on (default: eifer mode, margin x1.6, the
        encoder's input size); its size must be the encoder's input size.
    emg_normalisation : Normalisation | None
        The ``streaming.pipeline.profile.Normalisation`` the MLPs' EMG was divided by (default: the
        profile's default method).

    Returns
    -------
    Bundle
        The folder as :func:`load_bundle` reads it back (fully verified).

    Raises
    ------
    streaming.errors.BundleError
        Mismatched MLP dimensions, a bad crop, or a non-empty folder without ``overwrite``.
    """
    try:
        crop_spec = (
            crop
            if isinstance(crop, CropSpec)
            else CropSpec(**{"size": encoder.input_size, **dict(crop or {})})
        )
    except ValidationError as exc:
        raise BundleError(f"crop: {exc.errors()[0]['msg']} ({dict(crop or {})})") from None
    if crop_spec.size != encoder.input_size:
        raise BundleError(
            f"crop size {crop_spec.size}: the encoders take {encoder.input_size} px crops"
        )
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise BundleError(f"{path}: folder exists and is not empty (pass overwrite=True)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    dim = encoder.expression_dim
    n_emg = len(emg_channels)
    for mlp, name, n_in, n_out in (
        (emg2exp, "emg2exp", n_emg, dim),
        (exp2emg, "exp2emg", dim, n_emg),
    ):
        if (mlp.n_in, mlp.n_out) != (n_in, n_out):
            raise BundleError(
                f"{name}: maps {mlp.n_in} -> {mlp.n_out}, the bundle needs {n_in} -> {n_out}"
            )
    feature_dict = feature.to_dict() if hasattr(feature, "to_dict") else dict(feature)

    graphs: dict[str, dict[str, Any]] = {}
    models: dict[str, nn.Module] = {"encoders": encoder, "emg2exp": emg2exp, "exp2emg": exp2emg}
    for name, module in models.items():
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(path / f"{name}.safetensors"), metadata={"graph": name})
    export_encoders(encoder, path / "encoders.onnx")
    if fp16_onnx:
        export_encoders(encoder, path / "encoders_fp16.onnx", half=True)
    export_mlp(emg2exp, path / "emg2exp.onnx", "emg", "expression")
    export_mlp(exp2emg, path / "exp2emg.onnx", "expression", "emg")
    graphs["encoders"] = {
        "weights": "encoders.safetensors",
        "onnx": "encoders.onnx",
        "onnx_fp16": "encoders_fp16.onnx" if fp16_onnx else None,
        "config": encoder.config(),
        "inputs": _spec_dicts({"image": (1, 3, encoder.input_size, encoder.input_size)}),
        "outputs": _spec_dicts(
            {"pose": (1, 6), "shape": (1, encoder.n_shape), "expression": (1, dim)}
        ),
    }
    for name, mlp, i_name, o_name in ((
        "emg2exp", emg2exp, "emg", "expression"), ("exp2emg", exp2emg, "expression", "emg")):  # fmt: skip
        graphs[name] = {
            "weights": f"{name}.safetensors",
            "onnx": f"{name}.onnx",
            "config": mlp.config(),
            "inputs": _spec_dicts({i_name: (1, mlp.n_in)}),
            "outputs": _spec_dicts({o_name: (1, mlp.n_out)}),
        }
    files = {
        p.name: sha256_file(p)
        for p in sorted(path.iterdir())
        if p.is_file() and p.suffix in (".safetensors", ".onnx")
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": producer,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trained": bool(trained),
        "description": description,
        "expression_dim": dim,
        "n_exp": encoder.n_exp,
        "n_shape": encoder.n_shape,
        "emg_channels": list(emg_channels),
        "feature": feature_dict,
        "crop": crop_spec.model_dump(),
        "input_normalisation": {
            "image": IMAGE_NORMALISATION,
            "emg": emg_normalisation_entry(emg_normalisation),
        },
        "graphs": graphs,
        "files": files,
        "training": dict(training or {}),
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return load_bundle(path)


def _check_graph_files(bundle: Bundle) -> None:
    for name, entry in bundle.manifest.graphs.items():
        inputs, outputs = entry.specs()
        for file in (entry.onnx, entry.onnx_fp16):
            if file is None:
                continue
            try:
                io = onnx_io(bundle.path / file)
            except Exception as exc:
                raise BundleError(
                    f"{bundle.path / file}: not a readable ONNX model ({exc})"
                ) from None
            for kind, specs in (("inputs", inputs), ("outputs", outputs)):
                declared = io[kind]
                for spec in specs:
                    if spec.name not in declared:
                        raise BundleError(
                            f"{bundle.path / file}: no {kind[:-1]} {spec.name!r} (has {sorted(declared)})"
                        )
                    got = cast("list[int | None]", declared[spec.name]["shape"])
                    if len(got) != len(spec.shape) or any(
                        g is not None and g != want for g, want in zip(got, spec.shape, strict=True)
                    ):
                        raise BundleError(
                            f"{bundle.path / file}: {spec.name!r} shape {got}, manifest says {list(spec.shape)}"
                        )
        weights = bundle.path / entry.weights
        wanted = {k: tuple(v.shape) for k, v in bundle._empty_module(name).state_dict().items()}
        try:
            with safe_open(str(weights), framework="pt") as fh:
                names = list(fh.keys())
                stored = {k: tuple(fh.get_slice(k).get_shape()) for k in names}
        except Exception as exc:
            raise BundleError(f"{weights}: not a readable safetensors file ({exc})") from None
        for key, shape in wanted.items():
            if key not in stored:
                raise BundleError(f"{weights}: tensor {key!r} missing")
            if stored[key] != shape:
                raise BundleError(
                    f"{weights}: tensor {key!r} has shape {stored[key]}, graph {name!r} needs {shape}"
                )
        extra = sorted(set(stored) - set(wanted))
        if extra:
            raise BundleError(f"{weights}: unexpected tensors {extra[:5]}")


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read and verify a bundle folder.

    Parameters
    ----------
    path : str | Path
        The bundle folder (holding ``manifest.json``).
    verify : bool
        Check every file: sha256 checksums, the ONNX graphs' inputs and outputs, the weight
        shapes, the feature definition and the EMG normalisation. False checks the manifest
        alone (format, version, schema, dimensions): for tools that only read it.

    Returns
    -------
    Bundle

    Raises
    ------
    streaming.errors.BundleError
        Naming the file and the field at fault.
    """
    path = Path(path)
    manifest = read_manifest(path)
    check_shapes(path, manifest)
    bundle = Bundle(path, manifest)
    if verify:
        check_files(path, manifest)
        _check_graph_files(bundle)
        bundle.feature_definition()
        bundle.emg_normalisation()
    return bundle


def create_demo_bundle(
    path: str | Path,
    *,
    seed: int = 0,
    feature: str = "low_latency",
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    emg_channels: Sequence[str] | None = None,
    fp16_onnx: bool = True,
    overwrite: bool = False,
    architecture: str = "smirk",
    input_size: int | None = None,
) -> Bundle:
    """A bundle of randomly initialised models, marked ``"trained": false``.

    For tests only: its predictions mean nothing (the demo's bundle, with trained MLPs:
    :func:`eifer_models.demo_weights.create_trained_demo_bundle`).

    Parameters
    ----------
    path : str | Path
        The bundle folder to write.
    seed : int
        Seed of ``torch.manual_seed`` before the models are built (SMIRK's head initialisation):
        the same seed gives the same weights.
    feature : str
        Name of the EMG feature definition (``configs/features``) recorded in the manifest.
    hidden : sequence of int
        Hidden layer widths of both MLPs.
    emg_channels : sequence of str | None
        EMG channel labels (default ``F1`` .. ``F22``, the Fridlund bipolar scheme).
    fp16_onnx, overwrite : bool
        As in :func:`save_bundle`.
    architecture, input_size : str, int | None
        The encoders (:data:`eifer_models.encoders.ARCHITECTURES`) and their input side
        (default: the architecture's, 224 for SMIRK's, 64 for the compact one).

    Returns
    -------
    Bundle
    """
    from streaming.pipeline.features import get_feature

    torch.manual_seed(seed)
    channels = list(emg_channels or default_emg_channels())
    size = {"input_size": input_size} if input_size else {}
    encoder = build_encoder({"architecture": architecture, "n_exp": N_EXP, "n_shape": N_SHAPE, **size}).eval()  # fmt: skip
    dim = encoder.expression_dim
    emg2exp = EMG2Exp(len(channels), dim, hidden).eval()
    exp2emg = Exp2EMG(dim, len(channels), hidden).eval()
    return save_bundle(
        path,
        encoder,
        emg2exp,
        exp2emg,
        emg_channels=channels,
        feature=get_feature(feature),
        trained=False,
        producer=f"eifer_models.bundle.create_demo_bundle(seed={seed})",
        description="UNTRAINED demo bundle: random weights, for the demo and tests only",
        fp16_onnx=fp16_onnx,
        overwrite=overwrite,
    )
