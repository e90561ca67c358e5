"""``eifer node camera --source participant``: the synthetic participant as a live camera, with
its ground truth as a ``VideoTruth`` stream (``<camera name>-truth``).

The face follows the same activations as the EMG simulator (one source): the source builds the
simulator's activation model from the same :class:`~simulation.SimulatorConfig` and
takes the simulator's time origin from the running EMG node (``follow = "emg"``: the EMG
stream's ``desc/simulation/t0_lsl``; seed and script kind must agree, else a clear error), or
follows the protocol node's markers itself (``"markers"``: marker stamps are LSL times, so both
agree without sharing an origin), or runs on its own clock (``"none"``).

Each frame is rendered for its capture time ``t`` (the pacer's due time, LSL clock) before that
time comes, then stamped ``t`` like every source; the truth sample carries the same stamp.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Literal

from pydantic import Field, PositiveFloat

from simulation import EmgSimulator, LiveScript, SimulatorConfig
from streaming.acquisition.camera import CameraError, CapturedFrame
from streaming.config import Config

__all__ = ["ParticipantSource", "ParticipantSourceConfig"]

log = logging.getLogger(__name__)


class ParticipantSourceConfig(Config):
    """``[participant]`` of the camera node: what the synthetic participant follows and shows."""

    follow: Literal["emg", "markers", "none"] = "emg"
    emg_stream: str = "EMG"  # follow = "emg": the EMG node's stream (its simulator's t0)
    emg_source_id: str | None = None
    wait_s: PositiveFloat = 30.0  # how long to wait for that stream
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)  # = the EMG node's
    face_px: int = Field(224, ge=64, le=1024)  # size the face region is rendered at
    cables: bool = True
    truth: bool = True
    muscle_map: str | None = None  # default: configs/muscle_map.toml


def _local_clock() -> float:
    import pylsl

    return pylsl.local_clock()


class ParticipantSource:
    """Frames of a synthetic participant, paced in real time (a :class:`FrameSource`)."""

    def __init__(
        self,
        config: ParticipantSourceConfig | None = None,
        width: int = 1280,
        height: int = 720,
        rate_hz: float = 30.0,
        *,
        occlusion: str = "none",
        truth_name: str = "Camera-truth",
        of_stream: str = "Camera",
    ) -> None:
        self.config = config or ParticipantSourceConfig()
        self.width, self.height, self.rate_hz = width, height, rate_hz
        self.occlusion = occlusion
        self.truth_name, self.of_stream = truth_name, of_stream
        self.description: dict[str, Any] = {
            "source": "participant",
            "seed": self.config.simulator.seed,
            "occlusion": occlusion,
            "follow": self.config.follow,
            "truth_stream": truth_name if self.config.truth else "",
        }
        self.t0_lsl = 0.0  # LSL time of the simulator's sample 0
        self._participant: Any = None
        self._renderer: Any = None
        self._truth_outlet: Any = None
        self._follower: Any = None
        self._follow_stop = threading.Event()
        self._index = 0
        self._first_due: float | None = None

    def open(self) -> None:
        import torch

        from simulation.participant import Participant, load_muscle_map
        from simulation.participant.render import ParticipantRenderer

        torch.set_num_threads(1)  # one core: the budget the live source is designed for
        cfg = self.config
        sim_cfg = cfg.simulator
        if cfg.follow == "markers" and sim_cfg.script.kind != "markers":
            sim_cfg = sim_cfg.model_copy(
                update={"script": sim_cfg.script.model_copy(update={"kind": "markers"})}
            )
        simulator = EmgSimulator(sim_cfg)
        self._participant = Participant(sim_cfg.seed, simulator, load_muscle_map(cfg.muscle_map))
        self._renderer = ParticipantRenderer(
            self._participant.traits, self.width, self.height, face_px=cfg.face_px,
            occlusion=self.occlusion, cables=cfg.cables,
        )  # fmt: skip
        if cfg.follow == "emg":
            self.t0_lsl = self._emg_origin(sim_cfg)
        else:
            self.t0_lsl = _local_clock()
        if cfg.follow == "markers":
            from simulation.marker_follower import MarkerFollower

            script = sim_cfg.script
            self._follower = MarkerFollower(
                script.markers_stream, script.markers_source_id, self._follow_stop
            )
        self.description["t0_lsl"] = repr(self.t0_lsl)
        if cfg.truth:
            self._open_truth()

    def _emg_origin(self, sim_cfg: SimulatorConfig) -> float:
        from streaming.acquisition.lsl_io import StreamSelector, desc_to_dict, find_stream
        from streaming.errors import EiferError

        cfg = self.config
        selector = StreamSelector(cfg.emg_stream, "EMG", cfg.emg_source_id)
        try:
            info = find_stream(selector, timeout_s=cfg.wait_s)
        except EiferError as exc:
            raise CameraError(
                f"participant source follows the EMG simulator ({exc}); start `eifer node emg` "
                'or set participant.follow = "none" or "markers"'
            ) from None
        sim = desc_to_dict(info).get("simulation")
        if not isinstance(sim, dict) or "t0_lsl" not in sim:
            raise CameraError(
                f"stream {info.name()!r} is not the EMG simulator (no desc/simulation/t0_lsl); "
                "the participant can follow only a simulated EMG"
            )
        seed, kind = int(sim.get("seed", -1)), str(sim.get("script", ""))
        if seed != sim_cfg.seed or kind != sim_cfg.script.kind:
            raise CameraError(
                f"EMG simulator {info.name()!r} runs seed {seed}, script {kind!r}; this camera has "
                f"participant.simulator.seed = {sim_cfg.seed}, script {sim_cfg.script.kind!r}: "
                "give both nodes the same simulator settings"
            )
        log.info("participant follows %r (seed %d, script %s)", info.name(), seed, kind)
        return float(sim["t0_lsl"])

    def _open_truth(self) -> None:
        from simulation.participant.truth import truth_stream_info
        from streaming.acquisition.lsl_io import ChunkOutlet

        p = self._participant
        info = truth_stream_info(
            self.truth_name, self.rate_hz,
            f"eifer-participant-{p.seed}-{socket.gethostname()}-truth", p.muscle_labels,
            of_stream=self.of_stream,
            extra={"electromechanical_delay_ms": repr(p.delay_s * 1e3), "seed": p.seed,
                   "occlusion": self.occlusion, "t0_lsl": repr(self.t0_lsl)},
        )  # fmt: skip
        self._truth_outlet = ChunkOutlet(info, max_buffered_s=10.0)

    def _next_due(self) -> float:
        """Capture time of the next frame. Behind by more than a period (the CPU is busy), the
        source drops the missed frames as a camera does (their indices are skipped, so the node
        counts them), so it stays current instead of building a backlog."""
        now = _local_clock()
        if self._first_due is None:
            self._first_due = now
        due = self._first_due + self._index / self.rate_hz
        behind = int((now - due) * self.rate_hz)
        if behind >= 1:
            self._index += behind
            due = self._first_due + self._index / self.rate_hz
        return due

    def read(self) -> CapturedFrame | None:
        from simulation.participant.truth import truth_row

        if self._renderer is None:
            raise CameraError("participant source read before open()")
        due = self._next_due()
        p = self._participant
        if self._follower is not None and isinstance(p.simulator.script, LiveScript):
            self._follower.drain(
                p.simulator.script, self.t0_lsl, p.simulator.library.movements, due - self.t0_lsl
            )
        state = p.state(due - self.t0_lsl)
        frame = self._renderer.render(state)
        wait = due - _local_clock()
        if wait > 0:
            time.sleep(wait)
        if self._truth_outlet is not None:
            cx, cy, _ = self._renderer.placement(state, 0)
            self._truth_outlet.push(truth_row(self._index, state, 0, frame, (cx, cy)), due)
        captured = CapturedFrame(frame.rgb, due, self._index)
        self._index += 1
        return captured

    def close(self) -> None:
        if self._follower is not None:
            self._follow_stop.set()
            self._follower.close()
            self._follower = None
        if self._truth_outlet is not None:
            self._truth_outlet.close()
            self._truth_outlet = None
        self._renderer = None
