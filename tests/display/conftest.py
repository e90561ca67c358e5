"""Helpers for the display tests: a bus publisher of realistic frames, and headless Chromium through playwright (never installed by
tests: Debian's /usr/bin/chromium)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nodes.display.headless import CHROMIUM, CHROMIUM_ARGS
from streaming.acquisition.electrodes import load_scheme
from streaming.pipeline.biofeedback import load_movement_levels, movement_target

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "display"


class FramePublisher:
    """Publishes muscle/expression (per frame), status and instruction (~1 Hz) like the pipeline.

    Muscle activity follows the movement patterns of ``configs/movements.toml`` (Smile-Open,
    Forehead-Raise, ...) with a weaker right side (a palsy-like asymmetry), so scores and the
    symmetry index have something to show. ``sent_unix_s`` carries the wall-clock send time.
    """

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:*",
        rate_hz: float = 30.0,
        *,
        profile: bool = True,
        scheme: str = "fridlund",
        curve: Any = None,
    ) -> None:
        from streaming.bus.pubsub import Publisher

        self.publisher = Publisher(address, curve=curve)  # curve: a CurveServer, or plain
        self.address = self.publisher.address
        self.rate_hz = rate_hz
        self.profile = profile  # False: no participant profile and no models (microvolts only)
        self.scheme = load_scheme(scheme)
        levels = load_movement_levels(REPO / "configs" / "movements.toml")
        self.names = ["Smile-Open", "Forehead-Raise", "Lip-Pucker", "Eye-Tight"]
        self.patterns = [movement_target(levels[n], self.scheme.muscles) for n in self.names]
        self.right = np.array([s == "right" for s in self.scheme.sides])
        self.rng = np.random.default_rng(0)
        self.frame = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fields(self, frame: int) -> dict[str, dict[str, Any]]:
        t = frame / self.rate_hz
        k = int(t // 3.0) % len(self.patterns)
        ramp = 0.5 - 0.5 * np.cos(2 * np.pi * (t % 3.0) / 3.0)
        act = self.patterns[k] * ramp * np.where(self.right, 0.55, 1.0)
        act = np.clip(act + 0.03 * self.rng.random(act.shape[0]), 0, None).astype(np.float32)
        pred = np.clip(act * 0.9 + 0.02 * self.rng.standard_normal(act.shape[0]), 0, None)
        phi = (np.sin(0.7 * t + np.arange(55) * 0.3) * ramp).astype(np.float32)
        phi[50:52] = 0.5 * ramp  # eyelids
        phi[52:] = (0.15 * ramp, 0.0, 0.0)  # jaw: a small opening, as in real faces
        return {
            "muscle": {
                "channels": self.scheme.labels,
                "emg_measured": act,
                "emg_measured_uv": act * 80.0,
                "normalised": True,
                "emg_missing": False,
                "emg_from_video": pred.astype(np.float32),
                "emg_from_video_uv": (pred * 80.0).astype(np.float32),
                "sent_unix_s": time.time(),
            },
            "expression": {
                "phi_video": phi,
                "phi_emg": (phi * 0.8).astype(np.float32),
                "pose": np.zeros(6, np.float32),
            },
            "status": {
                "streams": {
                    "EMG": {
                        "connected": True,
                        "rate_hz": 4096.0,
                        "samples": frame * 136,
                        "gaps": 0,
                        "age_s": 0.01,
                    },
                    "Camera": {
                        "connected": True,
                        "rate_hz": self.rate_hz,
                        "samples": frame,
                        "gaps": 0,
                        "age_s": 0.02,
                    },
                },
                "latency_ms": {
                    "dsp": {"p50": 0.4, "p99": 1.1},
                    "inference": {"p50": 3.2, "p99": 5.9},
                },
                "frames": {"published": frame, "dropped": 0, "duplicates": 0, "emg_missing": 0},
                "backend": "onnxruntime-cpu",
                "feature": "low_latency",
                "errors": [],
            },
            "instruction": {
                "text": f"Please do: {self.names[k]}",
                "movement": self.names[k],
                "repetition": 1 + (frame // 90) % 3,
                "phase": "perform",
                "remaining_s": 3.0 - (t % 3.0),
                "index": k,
                "total": len(self.names),
            },
        }

    def publish_frame(self) -> None:
        fields = self.fields(self.frame)
        if not self.profile:
            muscle = fields["muscle"]
            muscle["emg_measured"] = muscle.pop("emg_measured_uv")
            muscle["emg_measured_uv"] = muscle["emg_measured"]
            muscle["normalised"] = False
            del muscle["emg_from_video"], muscle["emg_from_video_uv"]
        t = time.monotonic()
        for topic in ("muscle", "expression"):
            self.publisher.publish(topic, fields[topic], t=t, frame=self.frame)
        if self.frame % max(1, int(self.rate_hz)) == 0:
            for topic in ("status", "instruction"):
                self.publisher.publish(topic, fields[topic], t=t, frame=self.frame)
        self.frame += 1
        self.sent += 1

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.publish_frame()
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()

    def start(self) -> FramePublisher:
        self._thread = threading.Thread(target=self._run, name="test-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.publisher.close()


@pytest.fixture
def publisher() -> Iterator[FramePublisher]:
    pub = FramePublisher().start()
    yield pub
    pub.stop()


@pytest.fixture
def publisher_factory() -> Iterator[Any]:
    """Factory for started publishers with options (``profile=False``), stopped at teardown."""
    started: list[FramePublisher] = []

    def make(**kwargs: Any) -> FramePublisher:
        started.append(FramePublisher(**kwargs).start())
        return started[-1]

    yield make
    for pub in started:
        pub.stop()


def make_display_config(bus: str, **overrides: Any):
    from nodes.display.server import DisplayConfig

    # no protocol socket: the default tcp://127.0.0.1:5557 may be another demo's on this machine
    return DisplayConfig(bus_address=bus, **{"port": 0, "protocol_address": "", **overrides})


@pytest.fixture
def display_config():
    """Factory: a DisplayConfig on a free port reading ``bus``."""
    return make_display_config


def chromium_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file() or shutil.which("chromium") is not None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (each test opens its own page)."""
    if not chromium_available():
        pytest.skip("needs the playwright package and Debian chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def real_envelope(shared_data: Path, rate_hz: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Frame-rate envelope of a real sEMG recording, normalised to its maximum.

    ``emg/bbcontractions.csv`` (biceps, two contractions at ~10-19 s and ~28-39 s, 1 kHz; see the
    data README) through the project's causal online chain, chunk by chunk at the frame rate:
    20-450 Hz band-pass, full-wave rectification, 6 Hz low-pass. Returns (t_s, envelope).
    """
    from streaming.dsp.stages import Rectify, band_pass, envelope_lowpass

    fs = 1000.0
    x = np.loadtxt(shared_data / "emg" / "bbcontractions.csv", dtype=np.float64)[:, None]
    stages = [band_pass(20.0, 450.0, 4, 1, fs), Rectify(1), envelope_lowpass(6.0, 2, 1, fs)]
    hop = round(fs / rate_hz)
    values = []
    for start in range(0, x.shape[0] - hop + 1, hop):
        y = x[start : start + hop]
        for stage in stages:
            y = stage.process(y)
        values.append(y[-1, 0])
    env = np.clip(np.array(values), 0.0, None)
    env /= env[int(2 * rate_hz) :].max()  # skip the filter start-up transient (DC offset)
    return np.arange(env.shape[0]) / rate_hz, np.clip(env, 0.0, None)


def real_muscle_frames(
    shared_data: Path, movement: str = "Smile-Closed", weak_right: float = 0.4
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-frame 22-channel activity: the real envelope drives ``movement``'s muscle pattern,
    the participant's right side weakened by ``weak_right`` (a palsy-like asymmetry)."""
    scheme = load_scheme("fridlund")
    levels = load_movement_levels(REPO / "configs" / "movements.toml")
    pattern = movement_target(levels[movement], scheme.muscles)
    pattern = pattern * np.where(np.array(scheme.sides) == "right", weak_right, 1.0)
    t, env = real_envelope(shared_data)
    rest = 0.02 + 0.01 * np.random.default_rng(5).random((t.shape[0], 22))  # baseline noise
    return t, (env[:, None] * pattern[None, :] + rest).astype(np.float32), scheme.labels


@pytest.fixture
def real_frames(shared_data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`real_muscle_frames` of the shared recording (Smile-Closed, right side at 40%)."""
    return real_muscle_frames(shared_data)


LIFTING = {"channel": "F9", "start_s": 3.0, "ramp_s": 1.5}  # levator labii superioris, right
LIFTING_SECONDS = 8.0


def lifting_quality_reports() -> list[Any]:
    """The quality monitor's reports (every 0.5 s) on 8 s of simulated EMG in which ``F9`` lifts
    off from 3 s (simulation/emg.py ``lifting``, an open input after 1.5 s), through a smile and a
    snarl announced to the monitor as the protocol's markers: genuine ``quality`` bus content."""
    from simulation.emg import EmgSimulator, FaultConfig, ScriptConfig, SimulatorConfig
    from streaming.dsp.quality import QualityMonitor, channel_targets, nearest_neighbours
    from streaming.dsp.quality_config import load_quality_config

    script = ScriptConfig(
        kind="custom", events=[("Smile-Open", 1.0, 2.5), ("Snarl", 4.5, 2.5)], loop=False
    )
    fault = FaultConfig(kind="lifting", **LIFTING)
    sim = EmgSimulator(SimulatorConfig(seed=3, script=script, faults=[fault]))
    scheme = sim.scheme
    monitor = QualityMonitor(
        scheme.labels,
        sim.rate_hz,
        load_quality_config(),
        neighbours=nearest_neighbours(scheme.labels, scheme.positions, k=4),
        channel_targets=channel_targets(
            load_movement_levels(REPO / "configs" / "movements.toml"), scheme.muscles
        ),
    )
    for event in sim.script.events:
        monitor.set_movement(event.movement, round(event.start_s * sim.rate_hz))
        monitor.set_movement(None, round(event.end_s * sim.rate_hz))
    emg, _ = sim.generate(round(LIFTING_SECONDS * sim.rate_hz))
    return monitor.process_all(emg)


class QualityFramePublisher(FramePublisher):
    """:class:`FramePublisher` that also publishes ``reports`` on ``quality`` (from the same thread:
    zmq sockets are not thread-safe), one every ``every`` frames (2 Hz at 30 fps, as the
    pipeline does), in order from when ``quality_on`` is set, then the last one again; cleared:
    none (the page's verdicts go stale)."""

    def __init__(self, reports: list[Any], every: int = 15, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reports = reports
        self.every = every
        self.reports_sent = 0
        self.quality_on = threading.Event()

    def publish_frame(self) -> None:
        super().publish_frame()
        if self.quality_on.is_set() and self.frame % self.every == 0:
            report = self.reports[min(self.reports_sent, len(self.reports) - 1)]
            self.publisher.publish("quality", report.to_dict(), t=time.monotonic())
            self.reports_sent += 1
