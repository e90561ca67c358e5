"""Trainer configs (``configs/training/*.toml``), validated into frozen pydantic models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from eifer_models.face_detection.crop import CropSpec
from streaming.config import Config
from streaming.pipeline.profile import Normalisation

__all__ = ["DatasetConfig", "MlpConfig", "default_channels"]


def default_channels() -> list[str]:
    """``F1`` .. ``F22``: the bipolar Fridlund channels EIFER learns from."""
    return [f"F{i}" for i in range(1, 23)]


class DatasetConfig(Config):
    """``eifer train dataset``: which sources, which EMG feature, where the cache goes."""

    sessions: list[str] = []  # sessions (folders, .xdf files), or folders with sessions below
    mmm: list[str] = []  # roots of datasets in the MMM layout (MMM.csv + emg/ + params)
    output: str = "training_sets"  # the training set goes to <output>/<name>
    name: str = ""  # "" = "<feature>-<method>"
    feature: str = "low_latency"  # EMG feature definition (name or TOML path)
    method: Literal["online", "offline"] = "online"  # online chain as live / paper's offline
    channels: list[str] = Field(default_factory=default_channels)
    # streams by name; "" = the first stream of the contract's type (DESIGN.md: EMG, Video,
    # Markers, VideoTruth, EMGTruth), so sessions of any node naming (Camera, EMG-demo...) work
    emg_stream: str = ""
    video_stream: str = ""  # the camera stream (its frame-index stream in the XDF)
    markers_stream: str = ""
    video_truth_stream: str = ""
    emg_truth_stream: str = ""
    expression_dim: PositiveInt = 55
    crops: bool = True  # store the 224x224 face crop of every frame (phase 1, encoders)
    crop_size: PositiveInt = 224
    # the pipeline's eifer-mode crop: crop_margin x the detector's box, smoothed or steady
    # (crop_box), its centre moved by crop_offset x the box side; for phi_source = "encoders"
    # take the encoders bundle's crop (its manifest's crop: size, scale, box, offset)
    crop_margin: float = Field(1.6, gt=0.5, le=4.0)
    crop_box: Literal["smoothed", "steady"] = "smoothed"
    crop_offset: tuple[float, float] = (0.0, 0.0)

    def crop_spec(self) -> CropSpec:
        """The eifer-mode crop the stored face crops are made with."""
        return CropSpec(
            mode="eifer", scale=self.crop_margin, size=self.crop_size, box=self.crop_box,
            offset=self.crop_offset,
        )  # fmt: skip

    offline_rate_hz: PositiveFloat = 30.0  # grid of the paper's FFT resample (video rate)
    mmm_params_method: str = "eifer"  # video_noelec_params/<method>/ (MMM layout)


class MlpConfig(Config):
    """``eifer train mlp``: phase 2 as in the paper (EIFER supplement: Adam lr 1e-3, batch 512,
    200 epochs, no schedule, five-fold cross-validation), grouped by participant here."""

    dataset: str = ""  # training set folder (from `eifer train dataset`)
    output: str = "runs"  # the run goes to <output>/<run_name>; never overwritten
    run_name: str = ""  # "" = UTC time stamp
    epochs: PositiveInt = 200
    batch_size: PositiveInt = 512
    lr: PositiveFloat = 1e-3
    # Widths are not in the paper; two hidden layers of 256 (the bundle default): enough for a
    # smooth 22 <-> 55 map (about 85 k parameters each), fast on a CPU and at 30 Hz live.
    hidden: list[PositiveInt] = [256, 256]
    folds: PositiveInt = 5
    seed: int = 0
    normalisation: Normalisation = Normalisation()
    phi_source: Literal["truth", "encoders"] = "truth"  # truth stream / MMM params, or encoders
    encoders_bundle: str = ""  # encoders for phi_source=encoders and the output bundle
    fp16_onnx: bool = True  # the bundle's FP16 encoder graph (TensorRT 11 builds FP16 from it)
    final_model: bool = True  # after CV, train on every participant: the bundle's MLPs
    checkpoint_every: PositiveInt = 10  # epochs between checkpoints
    device: Literal["cpu", "cuda", "auto"] = "auto"
    # torch CPU threads per process: 1, because MLPs this small gain nothing from intra-op
    # threads and lose 20x on a busy machine (measured here: 0.5 s vs 12 s per epoch with 2
    # threads under load); scale out with torchrun instead. 0 = torch's default.
    threads: int = Field(1, ge=0)
