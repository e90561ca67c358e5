"""``eifer check`` settings: what to watch, for how long, and the thresholds it must meet."""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat, PositiveFloat

from streaming.acquisition.lsl_io import StreamSelector
from streaming.addresses import DEFAULT_ADDRESS, SubscriberKeys
from streaming.config import Config

__all__ = ["CheckConfig", "StreamConfig", "Thresholds"]


class StreamConfig(Config):
    name: str | None = None
    type: str | None = None
    source_id: str | None = None

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name or None, self.type or None, self.source_id or None)


class Thresholds(Config):
    """Each check passes when its figure is on the right side of its threshold.

    Defaults: 95 % of captured frames published is what the issue asks of the demo; 1 ms of
    EMG-to-frame alignment error is a quarter of the shortest facial-EMG onset a 4096 Hz system
    resolves and 1/33 of a frame; 500 ms capture->publish p99 is the overload bound of the
    pipeline tests plus the `mmm` feature's 266 ms delay.

    Correlations are judged only where models run (and, for ``phi_*``, a truth stream exists):

    - ``min_r_phi_emg`` 0.8: EMG2Exp reaches r 0.967 on held-out synthetic participants offline
      (5 folds, 0.966-0.974; README "Training") and 0.97 live on the demo's held-out participant
      (README "Demo"); 0.8 leaves room for a short window that covers few movements, another
      participant's gains and the online chain.
    - ``min_r_phi_video`` 0.5 and ``min_r_emg_from_video`` 0.35: the demo's trained encoders
      (the CPU recipe's compact encoder trained on the pipeline's own steady crops, supervised
      with the synthetic truth under electrodes; held-out r 0.92 offline, 0.79 through the
      pipeline's crop at 640x360 and 320x180) measured 0.80 and 0.65 live on the demo's
      held-out participant over 100 s at protocol speed 3 (2 runs, 320x180 at 10 fps, Exp2EMG
      trained on their phi); the thresholds keep the margin of 0.3 the earlier encoders had
      (0.57 / 0.63 against 0.35 / 0.25). Over 60 s at speed 1 (a window of few movements) the
      earlier encoders gave 0.34 and 0.10, so these rows are judged only over
      ``min_video_r_window_s`` (90 s) of frames; shorter windows report them. Untrained
      encoders measure -0.01 to 0.04 and -0.05 to 0.08.

    Electrodes (the pipeline's ``quality`` topic, each electrode's median state over the
    window): ``max_bad_electrodes`` 0, a ``bad`` electrode (flat, railed, open, bridged, mains
    far above the EMG...) fails the check, as a lab's pre-session checklist wants;
    ``max_check_electrodes`` (None: reported, not judged); ``judge_quality`` false reports both.

    ``judge_video_models`` false (untrained encoders): ``phi_video`` and ``emg_from_video`` are
    reported, not judged; ``judge_emg_models`` false (untrained MLPs): ``phi_emg`` and
    ``emg_from_video`` (Exp2EMG) are. ``eifer check --bundle`` sets them from the manifest.
    """

    min_published_fraction: float = Field(0.95, ge=0, le=1)
    max_duplicated_frames: int = Field(0, ge=0)
    max_emg_missing_fraction: float = Field(0.05, ge=0, le=1)
    max_alignment_error_ms: PositiveFloat = 1.0  # p99 of |error|
    max_capture_to_publish_p99_ms: PositiveFloat = 500.0
    min_r_emg_from_video: float = Field(0.35, ge=-1, le=1)
    min_r_phi_video: float = Field(0.5, ge=-1, le=1)
    min_video_r_window_s: float = Field(90.0, ge=0)  # shorter windows: video r reported only
    min_r_phi_emg: float = Field(0.8, ge=-1, le=1)
    judge_video_models: bool = True  # false: phi_video, emg_from_video reported, not judged
    judge_emg_models: bool = True  # false: phi_emg, emg_from_video reported, not judged
    max_bad_electrodes: int = Field(0, ge=0)
    max_check_electrodes: int | None = Field(None, ge=0)  # None: reported, not judged
    judge_quality: bool = True  # false: electrode states reported, not judged


class CheckConfig(Config):
    bundle: str = ""  # the bundle the pipeline runs: its manifest says which models are trained
    seconds: PositiveFloat = 10.0  # how long to watch
    settle_s: NonNegativeFloat = 0.5  # after connecting, before the window opens
    drain_s: PositiveFloat = 1.5  # after the window, for messages of frames captured in it
    bus_address: str = DEFAULT_ADDRESS
    bus_curve: SubscriberKeys = Field(default_factory=SubscriberKeys)  # CURVE: this end's keys
    find_timeout_s: PositiveFloat = 5.0
    emg: StreamConfig = Field(default_factory=lambda: StreamConfig(name="EMG", type="EMG"))
    video: StreamConfig = Field(default_factory=lambda: StreamConfig(name="Camera", type="Video"))
    thresholds: Thresholds = Field(default_factory=Thresholds)
