"""The bundle's three graphs on one backend: a prepared face crop and a normalised EMG envelope
in, :class:`~streaming.pipeline.predictions.FramePredictions` out. (Face detection and the channel
order of the EMG stream are :mod:`eifer_models.live`'s job, in front of this.)

Per frame (EIFER, Buechner et al., CVPR 2025, live use of the CSN side):

- encoders(face crop) -> ``phi_video`` (55), ``pose`` (6), ``shape`` (300);
- Exp2EMG(phi_video) -> ``emg_from_video`` (22, normalised envelopes);
- EMG2Exp(normalised envelope) -> ``phi_emg`` (55).

A missing or malformed input (no face, no EMG for this frame, wrong shape, NaN) gives NaN for the
outputs that depend on it (``video_missing`` / ``emg_missing``) and an entry in ``errors``; the
call never raises for bad input. Latency per stage is measured with ``perf_counter``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from eifer_models.bundle import Bundle, load_bundle
from eifer_models.runtimes.base import Runtime
from eifer_models.runtimes.select import Selection, open_runtime, select_backend
from streaming.errors import StreamFormatError
from streaming.pipeline.predictions import FramePredictions

__all__ = ["GraphInference"]

log = logging.getLogger(__name__)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan, dtype=np.float32)


class GraphInference:
    """All three graphs of a bundle on one backend (chosen by :func:`select_backend`).

    Parameters
    ----------
    bundle : Bundle | str | Path
        A loaded bundle, or its folder (loaded and verified here).
    runtime_override : str | None
        A backend name from ``BACKENDS`` to use instead of the automatic choice.
    warm_up : bool
        Run each graph once now, so the first frame does not pay for initialisation.
    threads : int | None
        ONNX Runtime's intra-op threads (None: its default).
    """

    def __init__(
        self,
        bundle: Bundle | str | Path,
        runtime_override: str | None = None,
        *,
        warm_up: bool = True,
        threads: int | None = None,
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        manifest = self.bundle.manifest
        self.selection: Selection = select_backend(self.bundle, runtime_override)
        self.backend = self.selection.backend
        self.expression_dim = manifest.expression_dim
        self.n_shape = manifest.n_shape
        self.emg_channels = list(manifest.emg_channels)
        image_spec = self.bundle.io("encoders")[0][0]
        self.crop_size = int(image_spec.shape[-1] or 0)  # the encoders' input side (manifest)
        self.runtimes: dict[str, Runtime] = {}
        self.notes: list[str] = []
        for graph in ("encoders", "exp2emg", "emg2exp"):
            runtime, note = open_runtime(self.bundle, graph, self.backend, threads=threads)
            self.runtimes[graph] = runtime
            self.notes.append(note)
        log.info("%s; %s", self.selection.describe(), self.bundle.summary())
        if warm_up:
            for runtime in self.runtimes.values():
                runtime.warm_up()

    def channel_index(self, labels: Sequence[str]) -> np.ndarray:
        """Indices that reorder an envelope with channel ``labels`` (e.g. the EMG stream's) into
        the bundle's channel order: ``envelope[index]``. StreamFormatError names the channels
        the bundle needs and the stream lacks."""
        position = {label: i for i, label in enumerate(labels)}
        missing = [c for c in self.emg_channels if c not in position]
        if missing:
            raise StreamFormatError(
                f"EMG stream lacks channels {missing} that the bundle's MLPs take "
                f"({len(self.emg_channels)} channels: {self.emg_channels}); check the electrode "
                "scheme of the EMG node"
            )
        return np.array([position[c] for c in self.emg_channels], dtype=np.intp)

    def _image(self, crop: np.ndarray | None, errors: list[str]) -> np.ndarray | None:
        if crop is None:
            return None
        crop = np.asarray(crop)
        size = self.crop_size
        if crop.shape == (size, size, 3):
            crop = crop.transpose(2, 0, 1)
        elif crop.shape != (3, size, size):
            errors.append(f"face crop has shape {crop.shape}, expected ({size}, {size}, 3) RGB")
            return None
        if crop.dtype == np.uint8:
            image = crop.astype(np.float32) / 255.0
        elif np.issubdtype(crop.dtype, np.floating):
            image = crop.astype(np.float32)
            if not np.isfinite(image).all():
                errors.append("face crop contains NaN/inf")
                return None
        else:
            errors.append(f"face crop dtype {crop.dtype} not supported (uint8 or float in [0, 1])")
            return None
        return np.ascontiguousarray(image[None])

    def _envelope(self, env: np.ndarray | None, errors: list[str]) -> np.ndarray | None:
        if env is None:
            return None
        env = np.asarray(env, dtype=np.float32).reshape(-1)
        if env.shape[0] != len(self.emg_channels):
            errors.append(
                f"EMG envelope has {env.shape[0]} channels, the bundle's MLPs take "
                f"{len(self.emg_channels)} ({self.emg_channels[0]}..{self.emg_channels[-1]})"
            )
            return None
        if not np.isfinite(env).all():
            bad = [self.emg_channels[i] for i in np.flatnonzero(~np.isfinite(env))]
            errors.append(f"EMG envelope not finite on {bad[:5]}")
            return None
        return env[None]

    def _run(self, graph: str, inputs: dict[str, np.ndarray], latency: dict[str, float],
             errors: list[str]) -> dict[str, np.ndarray] | None:  # fmt: skip
        t0 = time.perf_counter()
        try:
            return self.runtimes[graph].run(inputs)
        except Exception as exc:  # a backend failure must not stop the pipeline
            errors.append(f"{graph} on {self.backend} failed: {type(exc).__name__}: {exc}")
            return None
        finally:
            latency[graph] = 1e3 * (time.perf_counter() - t0)

    def process(
        self, face_crop: np.ndarray | None, emg_envelope_normalised: np.ndarray | None
    ) -> FramePredictions:
        """Predictions for one frame (float32 arrays in the bundle's channel order)."""
        return self.process_emg(self.process_video(face_crop), emg_envelope_normalised)

    def process_video(self, face_crop: np.ndarray | None) -> FramePredictions:
        """The video branch alone: encoders and Exp2EMG (``phi_emg`` NaN); needs no EMG, so the
        pipeline runs it while the frame's EMG is still awaited."""
        t_start = time.perf_counter()
        errors: list[str] = []
        latency: dict[str, float] = {}
        phi_video, pose = _nan(self.expression_dim), _nan(6)
        shape, emg_from_video = _nan(self.n_shape), _nan(len(self.emg_channels))
        image = self._image(face_crop, errors)
        if image is not None:
            enc = self._run("encoders", {"image": image}, latency, errors)
            if enc is not None:
                phi_video, pose, shape = enc["expression"][0], enc["pose"][0], enc["shape"][0]
                emg = self._run("exp2emg", {"expression": enc["expression"]}, latency, errors)
                if emg is not None:
                    emg_from_video = emg["emg"][0]
        latency["total"] = 1e3 * (time.perf_counter() - t_start)
        return FramePredictions(
            phi_video=np.asarray(phi_video, np.float32),
            pose=np.asarray(pose, np.float32),
            shape=np.asarray(shape, np.float32),
            emg_from_video=np.asarray(emg_from_video, np.float32),
            phi_emg=_nan(self.expression_dim),
            backend=self.backend,
            latency_ms=latency,
            errors=tuple(errors),
        )

    def process_emg(
        self, video: FramePredictions, emg_envelope_normalised: np.ndarray | None
    ) -> FramePredictions:
        """``video`` (from :meth:`process_video`) completed with EMG2Exp of the envelope."""
        t_start = time.perf_counter()
        errors: list[str] = []
        latency = dict(video.latency_ms)
        phi_emg = _nan(self.expression_dim)
        env = self._envelope(emg_envelope_normalised, errors)
        if env is not None:
            phi = self._run("emg2exp", {"emg": env}, latency, errors)
            if phi is not None:
                phi_emg = phi["expression"][0]
        latency["total"] = latency.get("total", 0.0) + 1e3 * (time.perf_counter() - t_start)
        return replace(
            video,
            phi_emg=np.asarray(phi_emg, np.float32),
            latency_ms=latency,
            errors=(*video.errors, *errors),
        )

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()
