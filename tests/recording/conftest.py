"""Fixtures for the recording tests (video files, replay, protocol, export).

``write_xdf`` writes small XDF 1.0 files byte by byte (layout: research note section 3) so the
replay and export tests do not depend on the recorder; ``replay_collect`` plays a recording in a
child process over real LSL and pulls every stream in this one.
"""

from __future__ import annotations

import multiprocessing as mp
import struct
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pytest

_FORMATS = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}


@dataclass
class XdfStream:
    """A stream to write: samples ``(n, channels)`` (list of string rows for strings)."""

    name: str
    type: str
    channel_format: str
    rate_hz: float
    timestamps: np.ndarray
    data: Any
    channel_count: int = 1
    labels: Sequence[str] | None = None
    unit: str | None = None
    desc: Mapping[str, Any] | None = None
    source_id: str = ""


def _xml_desc(value: Mapping[str, Any]) -> str:
    out = []
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        for one in items:
            if isinstance(one, Mapping):
                out.append(f"<{key}>{_xml_desc(one)}</{key}>")
            else:
                out.append(f"<{key}>{escape(str(one))}</{key}>")
    return "".join(out)


def _header(s: XdfStream) -> str:
    desc = dict(s.desc or {})
    if s.labels is not None:
        channels = [{"label": label} | ({"unit": s.unit} if s.unit else {}) for label in s.labels]
        desc = {"channels": {"channel": channels}} | desc
    return (
        '<?xml version="1.0"?><info>'
        f"<name>{escape(s.name)}</name><type>{escape(s.type)}</type>"
        f"<channel_count>{s.channel_count}</channel_count>"
        f"<nominal_srate>{s.rate_hz}</nominal_srate>"
        f"<channel_format>{s.channel_format}</channel_format>"
        f"<source_id>{escape(s.source_id or s.name)}</source_id>"
        f"<created_at>100.0</created_at><desc>{_xml_desc(desc)}</desc></info>"
    )


def _chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    body = struct.pack("<H", tag) + (b"" if stream_id is None else struct.pack("<I", stream_id))
    body += content
    return b"\x08" + struct.pack("<Q", len(body)) + body


def _samples(s: XdfStream, lo: int, hi: int) -> bytes:
    out = [b"\x04", struct.pack("<I", hi - lo)]
    for i in range(lo, hi):
        out.append(b"\x08" + struct.pack("<d", float(s.timestamps[i])))
        if s.channel_format == "string":
            for value in s.data[i]:
                raw = str(value).encode()
                out.append(b"\x04" + struct.pack("<I", len(raw)) + raw)
        else:
            out.append(np.asarray(s.data[i], dtype=_FORMATS[s.channel_format]).tobytes())
    return b"".join(out)


def write_xdf(
    path: Path, streams: Sequence[XdfStream], chunk: int = 64, datetime: str | None = None
) -> Path:
    """Write ``streams`` to an XDF file: headers, sample chunks, footers (LabRecorder order)."""
    when = f"<datetime>{datetime}</datetime>" if datetime else ""
    file_header = f'<?xml version="1.0"?><info><version>1.0</version>{when}</info>'
    parts = [b"XDF:", _chunk(1, file_header.encode())]
    for sid, s in enumerate(streams, start=1):
        parts.append(_chunk(2, _header(s).encode(), sid))
    for sid, s in enumerate(streams, start=1):
        for lo in range(0, len(s.timestamps), chunk):
            parts.append(_chunk(3, _samples(s, lo, min(lo + chunk, len(s.timestamps))), sid))
    for sid, s in enumerate(streams, start=1):
        n = len(s.timestamps)
        first = s.timestamps[0] if n else 0.0
        last = s.timestamps[-1] if n else 0.0
        footer = (
            f'<?xml version="1.0"?><info><first_timestamp>{first}</first_timestamp>'
            f"<last_timestamp>{last}</last_timestamp><sample_count>{n}</sample_count></info>"
        )
        parts.append(_chunk(6, footer.encode(), sid))
    path.write_bytes(b"".join(parts))
    return path


def emg_stream(duration_s: float, rate_hz: float = 512.0, t0: float = 1000.0) -> XdfStream:
    """22 Fridlund channels in microvolts; channel k holds ``k + sample index / 1000``."""
    n = int(duration_s * rate_hz)
    stamps = t0 + np.arange(n) / rate_hz
    data = (np.arange(22)[None, :] + np.arange(n)[:, None] / 1000.0).astype(np.float32)
    labels = [f"F{i + 1}" for i in range(22)]
    return XdfStream("EMG", "EMG", "float32", rate_hz, stamps, data, 22, labels, "microvolts")


def marker_stream(events: Sequence[tuple[float, str]]) -> XdfStream:
    stamps = np.array([t for t, _ in events], dtype=np.float64)
    return XdfStream("Markers", "Markers", "string", 0.0, stamps, [[m] for _, m in events])


@pytest.fixture
def xdf_tools() -> SimpleNamespace:
    """``Stream`` (XdfStream), ``write``, ``emg`` and ``markers`` builders for test files."""
    return SimpleNamespace(Stream=XdfStream, write=write_xdf, emg=emg_stream, markers=marker_stream)


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """A session folder: 3 s of EMG, markers, and 30 fps video (64x48) with its frame index."""
    from streaming.recording.video_file import VideoWriter

    folder = tmp_path / "session"
    folder.mkdir()
    rng = np.random.default_rng(7)
    n_frames, rate = 90, 30.0
    with VideoWriter(folder / "Camera.mkv", 64, 48, rate) as writer:
        for i in range(n_frames):
            frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            frame[0, 0] = (i, 255 - i, 7)  # frame number readable from the pixels
            writer.write(frame)
    frame_stamps = 1000.02 + np.arange(n_frames) / rate
    video = XdfStream(
        "Camera",
        "VideoFrames",
        "int32",
        rate,
        frame_stamps,
        np.arange(n_frames)[:, None],
        desc={
            "video": {"file": "Camera.mkv", "stream_name": "Camera", "stream_type": "Video"},
            "synchronization": {"can_drop_samples": "true"},
        },
    )
    markers = marker_stream(
        [
            (1000.5, "protocol:start"),
            (1001.0, "start:Smile-Open:1"),
            (1002.0, "stop:Smile-Open:1"),
            (1002.9, "protocol:end"),
        ]
    )
    write_xdf(folder / "session.xdf", [emg_stream(3.0), markers, video])
    (folder / "session.json").write_text('{"participant": "P01", "scheme": "fridlund"}')
    return folder


# ------------------------------------------------------------------------------ LSL replay


def _play(path: str, config: dict[str, Any], via_cli: bool) -> None:
    if via_cli:  # `eifer replay PATH --set key=value ...` as a user runs it
        import json

        from nodes.cli import main

        argv = ["replay", path, "--quiet", "--log-level", "WARNING"]
        for key, value in config.items():
            argv += ["--set", f"{key}={json.dumps(value)}"]
        assert main(argv) == 0
        return
    from streaming.recording.replay import Player, ReplayConfig, load_recording

    Player(load_recording(path), ReplayConfig.model_validate(config)).run()


@dataclass
class Pulled:
    """What a consumer got from one replayed stream."""

    xml: str
    channel_count: int
    rate_hz: float
    data: Any
    stamps: np.ndarray
    arrival: np.ndarray  # local_clock at the pull that returned each sample


def replay_collect(
    path: Path,
    names: Sequence[str],
    timeout_s: float = 30.0,
    via_cli: bool = False,
    expect: dict[str, int] | None = None,
    **config: Any,
) -> dict[str, Pulled]:
    """Replay ``path`` in a child process (real LSL) and pull ``names`` until it ends.

    With ``expect`` (sample counts per stream) the player keeps its outlets open while this
    consumer reads (``drain_s`` = ``timeout_s``), and pulling stops once every count is reached:
    what is asserted is then delivery, however far behind a busy machine leaves the inlets.
    """
    import pylsl

    from streaming.acquisition.lsl_io import ChunkInlet

    suffix = "_" + uuid.uuid4().hex[:8]
    settings = {
        "name_suffix": suffix,
        "wait_for_consumers_s": 20.0,
        "lead_s": 0.5,
        "drain_s": timeout_s if expect else 0.2,
    } | config
    process = mp.get_context("spawn").Process(target=_play, args=(str(path), settings, via_cli))
    process.start()
    inlets: dict[str, Any] = {}
    try:
        for name in names:
            found = pylsl.resolve_byprop("name", name + suffix, 1, 20.0)
            assert found, f"replayed stream {name!r} not found"
            inlets[name] = ChunkInlet(found[0], max_buflen_s=900, max_chunk=65536)

        def prepare(inlet: Any) -> str:
            xml = inlet._inlet.info(5.0).as_xml()  # full header incl. desc
            # the first clock-sync estimate blocks ~0.5 s (8 probes): take it before the data
            # flows, so arrival times measure the replay's pacing and no pull blocks on it
            inlet.time_correction(5.0)
            return xml

        with ThreadPoolExecutor(len(inlets)) as pool:  # before subscribing: replay waits
            xml = dict(zip(inlets, pool.map(prepare, inlets.values()), strict=True))
        for inlet in inlets.values():
            inlet.open(10.0)
        got: dict[str, list[tuple[Any, np.ndarray, float]]] = {n: [] for n in names}
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            new = 0
            for name, inlet in inlets.items():
                data, stamps = inlet.pull(0.01)
                if len(stamps):
                    got[name].append((data, stamps, pylsl.local_clock()))
                    new += len(stamps)
            if expect and all(
                sum(len(p[1]) for p in got[n]) >= count for n, count in expect.items()
            ):
                break
            if new == 0 and not process.is_alive():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.0:  # margin for a starved inlet thread
                    break
        result = {}
        for name, inlet in inlets.items():
            parts = got[name]
            stamps = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
            arrival = np.concatenate([np.full(len(p[1]), p[2]) for p in parts]) if parts else stamps
            if inlet.dtype is None:
                data: Any = [row for p in parts for row in p[0]]
            else:
                data = (
                    np.concatenate([p[0] for p in parts])
                    if parts
                    else np.zeros((0, inlet.channel_count))
                )
            result[name] = Pulled(
                xml[name], inlet.channel_count, inlet.rate_hz, data, stamps, arrival
            )
        return result
    finally:
        for inlet in inlets.values():
            inlet.close()
        process.join(timeout_s)
        if process.is_alive():
            process.kill()


@pytest.fixture
def replay() -> Callable[..., dict[str, Pulled]]:
    return replay_collect
