"""``eifer synth``: synthetic participants as session folders, faster than real time.

Each participant (seed ``seed + i``) performs the Mimics-and-Muscles protocol (cut to
``minutes``) in ``occluded_sessions`` sessions with electrodes and one without (EIFER.md: each
session twice with electrodes and once without). A session folder is what ``eifer record`` writes
(DESIGN.md "Sessions on disk"), through the same writers: ``session.xdf`` (:class:`XdfWriter`)
with the streams the live nodes publish, ``<camera>.mkv`` (:class:`VideoWriter`, lossless) with
its frame-index stream (:func:`~streaming.recording.recorder.frame_index_header`), and
``session.json``.

Streams: ``EMG`` (4096 Hz, the scheme's channels + ``counter``; occluded sessions only: no
electrodes, no EMG), ``EMG-truth`` (``EMGTruth``, one row per 32-sample chunk), ``Markers``
(``protocol:start``, ``start:<movement>:<rep>`` / ``stop:...``, ``protocol:end``), the camera's
frame index (``Camera.mkv``) and ``Camera-truth`` (``VideoTruth``). All stamps are in one
simulated LSL clock starting at ``t0_lsl``; nothing depends on the wall clock, so a seed gives
the same bytes in every file (the video is muxed bit-exact: no random segment id, no date).
"""

from __future__ import annotations

import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from simulation.emg import EmgSimulator, ScriptConfig, SimulatorConfig
from streaming.config import Config
from streaming.errors import SessionFileError
from streaming.folders import new_folder

__all__ = ["SynthConfig", "SynthProgress", "synthesise", "synthesise_session"]

COUNTER_MODULO = 1 << 24  # as the EMG node's counter channel (DESIGN.md)
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # the fixed "recording date" of synthetic sessions


class SynthConfig(Config):
    """Settings of ``eifer synth``: how many participants and sessions, how long, what video."""

    participants: PositiveInt = 1
    minutes: PositiveFloat = 1.0
    seed: int = 0  # participant i has seed + i
    occluded_sessions: int = Field(1, ge=0, le=4)
    free_session: bool = True
    scheme: str = "fridlund"
    width: PositiveInt = 640
    height: PositiveInt = 360
    rate_hz: PositiveFloat = 30.0
    face_px: int = Field(160, ge=64, le=1024)  # the face region's render size (then scaled)
    jobs: int = Field(1, ge=1, le=64)  # sessions synthesised in parallel (one process each)
    # sensor noise makes lossless video ~10x larger (~180 kB per 640x360 frame): off by default
    sensor_noise: bool = False
    emg_rate_hz: PositiveFloat = 4096.0
    chunk_samples: PositiveInt = 32
    t0_lsl: float = 1000.0  # simulated LSL time of each session's start
    emg_name: str = "EMG"
    camera_name: str = "Camera"
    markers_name: str = "Markers"
    video_codec: str | None = None


@dataclass(frozen=True)
class SynthProgress:
    """Progress of ``eifer synth``: seconds of ``session`` done, of all sessions, wall time."""

    session: str
    done_s: float
    total_s: float
    elapsed_s: float


def _fixed_header(xml: str, uid: str, created: float) -> str:
    """A stream header without the fields liblsl fills per run (uid, host, session), so a seed
    always gives the same bytes; ``created_at`` is the session's simulated start."""
    root = ET.fromstring(xml)
    for tag, value in (
        ("uid", uid),
        ("created_at", repr(created)),
        ("session_id", "eifer-synth"),
        ("hostname", "eifer-synth"),
    ):
        element = root.find(tag)
        if element is not None:
            element.text = value
    for tag in ("v4address", "v4data_port", "v4service_port", "v6address", "v6data_port",
                "v6service_port"):  # fmt: skip
        element = root.find(tag)
        if element is not None:
            element.text = ""
    return '<?xml version="1.0"?>' + ET.tostring(root, encoding="unicode")


class _SessionWriter:
    """The XDF streams of one session, written through the recorder's :class:`XdfWriter`."""

    def __init__(self, folder: Path, created: str) -> None:
        from streaming.recording.xdf_writer import XdfWriter

        self.writer = XdfWriter(folder / "session.xdf", created=created)
        self.stats: dict[int, list[Any]] = {}  # id -> [name, kind, first, last, count]

    def header(self, stream_id: int, xml: str, name: str, kind: str) -> None:
        self.writer.stream_header(stream_id, xml)
        self.stats[stream_id] = [name, kind, None, None, 0]

    def samples(self, stream_id: int, stamps: np.ndarray, data: Any, fmt: str) -> None:
        if len(stamps) == 0:
            return
        self.writer.samples(stream_id, stamps, data, fmt)
        s = self.stats[stream_id]
        s[2] = float(stamps[0]) if s[2] is None else s[2]
        s[3] = float(stamps[-1])
        s[4] += len(stamps)

    def close(self) -> list[dict[str, object]]:
        for stream_id, (_, _, first, last, count) in self.stats.items():
            self.writer.stream_footer(stream_id, first or 0.0, last or 0.0, count)
        self.writer.close()
        return [{"name": n, "kind": k, "samples": c} for n, k, _, _, c in self.stats.values()]


def _markers(script: Any, duration_s: float) -> list[tuple[float, str]]:
    markers = [(0.0, "protocol:start")]
    for event in script.events:
        if event.start_s >= duration_s:
            break
        tag = f"{event.movement}:{event.repetition}"
        markers.append((event.start_s, f"start:{tag}"))
        if event.end_s < duration_s:
            markers.append((event.end_s, f"stop:{tag}"))
        else:
            markers.append((duration_s, f"stop:{tag}"))
    markers.append((duration_s, "protocol:end"))
    return markers


def synthesise_session(
    folder: Path,
    config: SynthConfig,
    participant_seed: int,
    session_no: int,
    occlusion: str | None,
    on_progress: Callable[[float], None] | None = None,
) -> Path:
    """Write one session folder (``folder`` must not exist); returns it.

    Parameters
    ----------
    folder : Path
        The session folder to create.
    config : SynthConfig
        Length, video size and rate, electrode scheme.
    participant_seed : int
        The participant (face, muscles, traits); the same seed, the same person.
    session_no : int
        Session number: with the participant seed, it seeds the session's EMG noise and jitter.
    occlusion : str | None
        Electrode scheme drawn on the face (and EMG recorded), or None: no electrodes, no EMG.
    on_progress : callable (seconds done) | None
        Called as the session is written.
    """
    import torch

    from simulation.participant import Participant
    from simulation.participant.render import ParticipantRenderer
    from simulation.participant.truth import truth_row, truth_stream_info
    from streaming.acquisition.lsl_io import stream_info
    from streaming.recording.recorder import frame_index_header
    from streaming.recording.session_folder import SessionInfo, video_file_name, write_session_info
    from streaming.recording.video_file import VideoWriter

    torch.set_num_threads(1)
    duration_s = 60.0 * config.minutes
    t0 = config.t0_lsl
    session_seed = participant_seed * 16 + session_no  # each session its own EMG noise/jitter
    sim_config = SimulatorConfig(
        scheme=config.scheme,
        rate_hz=config.emg_rate_hz,
        seed=session_seed,
        script=ScriptConfig(kind="protocol", loop=False, seed=session_seed),
    )
    simulator = EmgSimulator(sim_config)
    participant = Participant(participant_seed, simulator)
    renderer = ParticipantRenderer(
        participant.traits, config.width, config.height, face_px=config.face_px,
        occlusion=occlusion, sensor_noise=config.sensor_noise,
    )  # fmt: skip
    new_folder(
        folder,
        SessionFileError,
        f"{folder} exists; synthetic sessions are never overwritten: choose another --out",
    )
    started = EPOCH + timedelta(days=participant_seed, minutes=10 * session_no)
    out = _SessionWriter(folder, started.isoformat())
    created = t0
    emg_id = truth_id = None
    labels = simulator.labels
    if occlusion is not None:  # electrodes on: the amplifier records
        emg_info = stream_info(
            config.emg_name, "EMG", len(labels) + 1, simulator.rate_hz, "float32",
            f"eifer-synth-{participant_seed}-emg", channel_labels=[*labels, "counter"],
            channel_unit=["microvolts"] * len(labels) + ["samples"],
            channel_type=["EMG"] * len(labels) + ["Counter"],
            desc={"manufacturer": "EIFER live", "model": "EmgSimulator (eifer synth)",
                  "scheme": simulator.scheme.name, "montage": simulator.scheme.montage,
                  "counter": {"label": "counter", "modulo": COUNTER_MODULO},
                  "simulation": {"t0_lsl": repr(t0), "seed": session_seed, "script": "protocol",
                                 "truth_stream": f"{config.emg_name}-truth"}},
        )  # fmt: skip
        emg_id = 1
        out.header(
            emg_id,
            _fixed_header(emg_info.as_xml(), "synth-emg", created),
            config.emg_name,
            "samples",
        )
        truth_labels = ["sample_index", *simulator.muscle_labels]
        emg_truth = stream_info(
            f"{config.emg_name}-truth", "EMGTruth", len(truth_labels),
            simulator.rate_hz / config.chunk_samples, "double64",
            f"eifer-synth-{participant_seed}-emg-truth", channel_labels=truth_labels,
            desc={"of_stream": config.emg_name, "chunk_samples": config.chunk_samples,
                  "t0_lsl": repr(t0), "stamp": "true LSL time of the chunk's first sample"},
        )  # fmt: skip
        truth_id = 2
        out.header(truth_id, _fixed_header(emg_truth.as_xml(), "synth-emg-truth", created),
                   f"{config.emg_name}-truth", "samples")  # fmt: skip
    markers_info = stream_info(
        config.markers_name, "Markers", 1, 0.0, "string", f"eifer-synth-{participant_seed}-mk"
    )
    out.header(3, _fixed_header(markers_info.as_xml(), "synth-markers", created),
               config.markers_name, "samples")  # fmt: skip
    from streaming.acquisition.camera_frames import video_stream_info

    video_info = video_stream_info(
        config.camera_name, config.width, config.height, config.rate_hz,
        f"eifer-synth-{participant_seed}-camera",
        extra={"camera": {"source": "participant", "seed": participant_seed,
                          "occlusion": occlusion or "none", "synthesised": "eifer synth"}},
    )  # fmt: skip
    video_file = video_file_name(config.camera_name)
    out.header(4, _fixed_header(frame_index_header(video_info, video_file), "synth-video", created),
               config.camera_name, "video")  # fmt: skip
    cam_truth = truth_stream_info(
        f"{config.camera_name}-truth", config.rate_hz, f"eifer-synth-{participant_seed}-truth",
        participant.muscle_labels, of_stream=config.camera_name,
        extra={"electromechanical_delay_ms": repr(participant.delay_s * 1e3),
               "seed": participant_seed, "occlusion": occlusion or "none", "t0_lsl": repr(t0)},
    )  # fmt: skip
    out.header(5, _fixed_header(cam_truth.as_xml(), "synth-video-truth", created),
               f"{config.camera_name}-truth", "samples")  # fmt: skip

    marks = _markers(simulator.script, duration_s)
    out.samples(3, np.array([t0 + t for t, _ in marks]), [[m] for _, m in marks], "string")
    video = VideoWriter(
        folder / video_file, config.width, config.height, config.rate_hz,
        codec=config.video_codec, bitexact=True,
    )  # fmt: skip
    n_frames = int(np.floor(duration_s * config.rate_hz + 1e-6))
    n_emg = round(duration_s * simulator.rate_hz)
    n_emg -= n_emg % config.chunk_samples
    block_s = 1.0
    frame = 0
    emg_done = 0
    try:
        for start_s in np.arange(0.0, duration_s, block_s):
            end_s = min(start_s + block_s, duration_s)
            if emg_id is not None and truth_id is not None:  # set together: electrodes on
                stop = min(round(end_s * simulator.rate_hz), n_emg)
                stop -= (stop - emg_done) % config.chunk_samples
                if stop > emg_done:
                    emg, act = simulator.generate(stop - emg_done)
                    index = np.arange(emg_done, stop)
                    counter = (index % COUNTER_MODULO).astype(np.float32)[:, None]
                    out.samples(emg_id, t0 + index / simulator.rate_hz,
                                np.concatenate([emg, counter], 1), "float32")  # fmt: skip
                    first = np.arange(0, stop - emg_done, config.chunk_samples)
                    rows = np.concatenate(
                        [index[first, None].astype(np.float64), act[first].astype(np.float64)], 1
                    )
                    out.samples(truth_id, t0 + index[first] / simulator.rate_hz, rows, "double64")
                    emg_done = stop
            stamps, indices, truths = [], [], []
            while frame < n_frames and frame / config.rate_hz < end_s:
                t = frame / config.rate_hz
                state = participant.state(t)
                rendered = renderer.render(state)
                indices.append(float(video.write(rendered.rgb)))
                cx, cy, _ = renderer.placement(state, 0)
                truths.append(truth_row(frame, state, 0, rendered, (cx, cy))[0])
                stamps.append(t0 + t)
                frame += 1
            if stamps:
                out.samples(4, np.array(stamps), np.array(indices)[:, None], "double64")
                out.samples(5, np.array(stamps), np.array(truths), "float32")
            if start_s % 5.0 == 0.0:  # as the recorder: clock offsets every 5 s (one clock: 0)
                for stream_id in out.stats:
                    out.writer.clock_offset(stream_id, t0 + start_s, 0.0)
            if on_progress is not None:
                on_progress(end_s)
    finally:
        video.close()
        streams = out.close()
    info = SessionInfo(
        participant=f"synth-{participant_seed:04d}",
        electrode_scheme=config.scheme if occlusion is not None else "",
        protocol="mimics_and_muscles",
        notes=(
            f"eifer synth: synthetic participant seed {participant_seed}, session {session_no}, "
            f"{'electrodes ' + occlusion if occlusion else 'occlusion-free (no electrodes, no EMG)'}"
            f", {config.minutes:g} min, {config.width}x{config.height} at {config.rate_hz:g} fps"
        ),
        started=started.isoformat(),
        stopped=(started + timedelta(seconds=duration_s)).isoformat(),
        streams=streams,
        stop_reason="synthesised",
    )
    write_session_info(folder, info)
    return folder


def session_plan(config: SynthConfig) -> list[tuple[str, int, int, str | None]]:
    """(folder name, participant seed, session number, occlusion) for every session."""
    plan: list[tuple[str, int, int, str | None]] = []
    for i in range(config.participants):
        seed = config.seed + i
        for k in range(config.occluded_sessions):
            plan.append((f"P{seed:04d}/occluded-{k + 1}", seed, k + 1, config.scheme))
        if config.free_session:
            plan.append((f"P{seed:04d}/free", seed, 0, None))
    return plan


def synthesise(
    config: SynthConfig,
    out: str | Path,
    on_progress: Callable[[SynthProgress], None] | None = None,
) -> list[Path]:
    """Every session of every participant under ``out``; returns the session folders."""
    out = Path(out)
    plan = session_plan(config)
    existing = [name for name, *_ in plan if (out / name).exists()]
    if existing:
        raise SessionFileError(
            f"{out / existing[0]} exists; synthetic sessions are never overwritten"
        )
    total = 60.0 * config.minutes * len(plan)
    start = time.perf_counter()
    if config.jobs > 1:
        return _synthesise_parallel(config, out, plan, total, start, on_progress)
    folders = []
    for n, (name, seed, session_no, occlusion) in enumerate(plan):
        base = 60.0 * config.minutes * n

        def report(done_s: float, name: str = name, base: float = base) -> None:
            if on_progress is not None:
                on_progress(SynthProgress(name, base + done_s, total, time.perf_counter() - start))

        folders.append(synthesise_session(out / name, config, seed, session_no, occlusion, report))
    return folders


def _synthesise_parallel(
    config: SynthConfig,
    out: Path,
    plan: list[tuple[str, int, int, str | None]],
    total: float,
    start: float,
    on_progress: Callable[[SynthProgress], None] | None,
) -> list[Path]:
    """Sessions in ``config.jobs`` processes; each is independent, so the files are the same
    as in one process. Progress advances per finished session."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    done_s = 0.0
    with ProcessPoolExecutor(config.jobs, mp_context=context) as pool:
        futures = {
            pool.submit(synthesise_session, out / name, config, seed, number, occlusion): name
            for name, seed, number, occlusion in plan
        }
        for future in as_completed(futures):
            future.result()
            done_s += 60.0 * config.minutes
            if on_progress is not None:
                elapsed = time.perf_counter() - start
                on_progress(SynthProgress(futures[future], done_s, total, elapsed))
    return [out / name for name, *_ in plan]


def print_progress(progress: SynthProgress, stream: Any = sys.stderr) -> None:
    """One progress bar line: done, simulated seconds, speed as a multiple of real time."""
    frac = progress.done_s / max(progress.total_s, 1e-9)
    bar = "#" * int(30 * frac)
    speed = progress.done_s / max(progress.elapsed_s, 1e-9)
    stream.write(
        f"\r[{bar:<30}] {100 * frac:5.1f}% {progress.session:<22} "
        f"{progress.done_s:7.1f}/{progress.total_s:.0f} s simulated, {speed:5.1f}x real time"
    )
    if progress.done_s >= progress.total_s:
        stream.write("\n")
    stream.flush()
