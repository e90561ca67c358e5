"""Small session folders with a known truth, for the trainer's tests and benchmark.

NOT the synthetic participant (``eifer synth``, another part of the project): a minimal stand-in
written with the project's own writers (:class:`~streaming.recording.xdf_writer.XdfWriter`,
:class:`~streaming.recording.video_file.VideoWriter`) in exactly the ``eifer record`` layout, so the
trainer is tested end to end against a truth it does not compute itself:

- per channel (F1..F22) a true activation ``a_c(t)`` in 0..1 from a movement script (each
  movement drives a few channels with 0.3 s ramps, random intensity per repetition);
- EMG (µV) = band-limited Gaussian noise x (participant gain ``A_c`` x ``a_c(t)`` + resting
  tone): surface EMG is close to amplitude-modulated Gaussian noise (see
  ``simulation/emg.py``); gains differ per participant (so normalisation matters);
- ``phi(t) = tanh(W a(t))`` with one fixed sparse ``W`` (the "muscle map", the same for every
  participant), components 30..54 undriven (zero), in the ``VideoTruth`` stream per frame
  ``[frame index, phi (55), pose (6) = 0, face box (4)]``;
- ``EMG-truth`` per chunk ``[sample index, a_c for every channel]``; ``Markers``
  ``start:<movement>:<rep>`` / ``stop:...`` as the protocol node sends them; a small video of a
  real face photograph (``skimage.data.astronaut``) moving by a pixel or two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from scipy import signal

from streaming.recording.session_folder import SessionInfo, video_file_name
from streaming.recording.video_file import VideoWriter
from streaming.recording.xdf_writer import XdfWriter

__all__ = ["MOVEMENTS", "ToySpec", "muscle_map", "true_phi", "write_toy_session"]

CHANNELS = [f"F{i}" for i in range(1, 23)]
N_PHI, N_DRIVEN = 55, 30
MOVEMENTS: dict[str, list[str]] = {
    "Forehead-Raise": ["F1", "F2", "F3", "F4"],
    "Brow-Lower": ["F5", "F6", "F7", "F8"],
    "Eye-Tight": ["F17", "F18", "F5", "F6"],
    "Nose-Wrinkler": ["F9", "F10", "F7", "F8"],
    "Smile-Open": ["F19", "F20", "F21", "F22", "F17", "F18"],
    "Lip-Pucker": ["F11", "F12", "F15", "F16"],
    "Depress-Lip": ["F13", "F14", "F15", "F16"],
}


@dataclass(frozen=True)
class ToySpec:
    participant: str
    seed: int
    repetitions: int = 2
    perform_s: float = 3.0
    rest_s: float = 2.0
    lead_in_s: float = 2.0
    emg_rate_hz: float = 2048.0
    frame_rate_hz: float = 30.0
    frame_size: int = 160
    chunk_samples: int = 64
    video_offset_s: float = 0.1  # the camera starts after the amplifier
    stamp_jitter_s: float = 0.0005  # per-chunk stamp jitter of the EMG stream


def muscle_map(seed: int = 1234) -> np.ndarray:
    """``W`` (55, 22): each driven phi component mixes two or three channels."""
    rng = np.random.default_rng(seed)
    w = np.zeros((N_PHI, len(CHANNELS)))
    for k in range(N_DRIVEN):
        picks = rng.choice(len(CHANNELS), size=rng.integers(2, 4), replace=False)
        w[k, picks] = rng.uniform(0.6, 1.2, len(picks)) * rng.choice([-1.0, 1.0], len(picks))
    return w


def true_phi(activation: np.ndarray) -> np.ndarray:
    """The known truth: ``tanh(W a)`` per row of ``activation`` (n, 22)."""
    return np.tanh(activation @ muscle_map().T)


def _script(spec: ToySpec, rng: np.random.Generator) -> list[tuple[str, int, float, float, float]]:
    """(movement, repetition, start_s, stop_s, intensity)."""
    events, t = [], spec.lead_in_s
    for rep in range(1, spec.repetitions + 1):
        for name in rng.permutation(list(MOVEMENTS)):
            events.append((str(name), rep, t, t + spec.perform_s, float(rng.uniform(0.5, 1.0))))
            t += spec.perform_s + spec.rest_s
    return events


def _activation(t: np.ndarray, events: list[tuple[str, int, float, float, float]]) -> np.ndarray:
    a = np.zeros((len(t), len(CHANNELS)))
    ramp = 0.3
    for name, _, start, stop, level in events:
        shape = np.clip(np.minimum(t - start, stop - t) / ramp, 0.0, 1.0)
        for label in MOVEMENTS[name]:
            c = CHANNELS.index(label)
            a[:, c] = np.maximum(a[:, c], level * shape)
    return a


def _header(
    name: str, stype: str, n: int, rate: float, fmt: str, labels: list[str], desc: str = ""
) -> str:
    channels = "".join(f"<channel><label>{escape(x)}</label></channel>" for x in labels)
    return (
        f'<?xml version="1.0"?><info><name>{escape(name)}</name><type>{stype}</type>'
        f"<channel_count>{n}</channel_count><nominal_srate>{rate}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><source_id>toy-{escape(name)}</source_id>"
        f"<desc><channels>{channels}</channels>{desc}</desc></info>"
    )


def _face_frames(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    import cv2
    from skimage import data

    face = cv2.resize(
        data.astronaut()[0:300, 90:390], (size + 8, size + 8), interpolation=cv2.INTER_AREA
    )
    shifts = rng.integers(0, 3, size=(n, 2))
    return np.stack([face[dy + 3 : dy + 3 + size, dx + 3 : dx + 3 + size] for dy, dx in shifts])


def write_toy_session(folder: str | Path, spec: ToySpec, t0: float = 1000.0) -> Path:
    """Write one session folder (``session.xdf``, ``Video.mkv``, ``session.json``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(spec.seed)
    events = _script(spec, rng)
    duration = events[-1][3] + spec.rest_s
    fs = spec.emg_rate_hz
    n = round(duration * fs / spec.chunk_samples) * spec.chunk_samples
    t_rel = np.arange(n) / fs
    act = _activation(t_rel, events)
    gains = rng.uniform(20.0, 120.0, len(CHANNELS))  # µV at full contraction, per participant
    sos = signal.butter(4, [20.0, 450.0], btype="bandpass", fs=fs, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal((n, len(CHANNELS))), axis=0)
    noise /= noise.std(axis=0, keepdims=True)
    emg = noise * (gains * act + 2.0)
    counter = np.arange(n, dtype=np.float64)[:, None]
    jitter = np.repeat(
        rng.uniform(-1, 1, n // spec.chunk_samples) * spec.stamp_jitter_s, spec.chunk_samples
    )
    emg_stamps = t0 + t_rel + jitter

    n_frames = int((duration - spec.video_offset_s - 0.5) * spec.frame_rate_hz)
    t_frames_rel = spec.video_offset_s + np.arange(n_frames) / spec.frame_rate_hz
    a_frames = _activation(t_frames_rel, events)
    phi = true_phi(a_frames)
    box = [
        spec.frame_size * 0.2,
        spec.frame_size * 0.2,
        spec.frame_size * 0.6,
        spec.frame_size * 0.6,
    ]
    video_truth = np.concatenate(
        [np.arange(n_frames)[:, None], phi, np.zeros((n_frames, 6)), np.tile(box, (n_frames, 1))],
        axis=1,
    )
    video_file = video_file_name("Video")
    with VideoWriter(
        folder / video_file, spec.frame_size, spec.frame_size, spec.frame_rate_hz
    ) as video:
        for frame in _face_frames(spec.frame_size, n_frames, rng):
            video.write(frame)

    writer = XdfWriter(folder / "session.xdf")
    streams = [
        (_header("EMG", "EMG", 23, fs, "float32", [*CHANNELS, "counter"]), emg_stamps,
         np.concatenate([emg, counter], axis=1), "float32"),
        (_header("Video", "Video", 1, spec.frame_rate_hz, "double64", ["frame"],
                 f"<video><file>{video_file}</file><stream_name>Video</stream_name>"
                 "<stream_type>Video</stream_type></video>"),
         t0 + t_frames_rel, np.arange(n_frames, dtype=np.float64)[:, None], "double64"),
        (_header("VideoTruth", "VideoTruth", video_truth.shape[1], spec.frame_rate_hz, "float32",
                 ["frame_index"] + [f"phi{i}" for i in range(N_PHI)] + [f"pose{i}" for i in range(6)]
                 + ["box_x", "box_y", "box_w", "box_h"]),
         t0 + t_frames_rel, video_truth, "float32"),
        (_header("EMG-truth", "EMGTruth", 23, fs / spec.chunk_samples, "double64",
                 ["sample_index", *CHANNELS]),
         t0 + t_rel[:: spec.chunk_samples],
         np.concatenate([counter[:: spec.chunk_samples], act[:: spec.chunk_samples]], axis=1),
         "double64"),
    ]  # fmt: skip
    for sid, (xml, *_) in enumerate(streams, start=1):
        writer.stream_header(sid, xml)
    for sid, (_, stamps, values, fmt) in enumerate(streams, start=1):
        for lo in range(0, len(stamps), 4096):
            writer.samples(sid, stamps[lo : lo + 4096], values[lo : lo + 4096], fmt)
    marker_id = len(streams) + 1
    writer.stream_header(marker_id, _header("Markers", "Markers", 1, 0.0, "string", ["marker"]))
    markers = [("protocol:start", 0.0)]
    for name, rep, start, stop, _ in events:
        markers += [(f"start:{name}:{rep}", start), (f"stop:{name}:{rep}", stop)]
    writer.samples(
        marker_id, t0 + np.array([m[1] for m in markers]), [[m[0]] for m in markers], "string"
    )
    for sid, (_, stamps, _, _) in enumerate(streams, start=1):
        writer.stream_footer(sid, float(stamps[0]), float(stamps[-1]), len(stamps))
    writer.stream_footer(marker_id, t0, t0 + markers[-1][1], len(markers))
    writer.close()
    info = SessionInfo(
        participant=spec.participant, protocol="toy", notes="training/toy_sessions.py"
    )
    (folder / "session.json").write_text(json.dumps(info.model_dump(), indent=2))
    return folder
