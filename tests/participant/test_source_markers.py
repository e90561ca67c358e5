"""The participant camera source following a protocol node's markers: the face performs what the
markers say, at the markers' LSL times, and bad settings fail with one clear line."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from simulation.participant.camera_source import ParticipantSource, ParticipantSourceConfig
from streaming.acquisition.camera import CameraError
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, find_stream


def _push_markers(name: str, start_in_s: float, hold_s: float, ready, stop) -> None:
    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, configure_lsl, stream_info

    configure_lsl()
    outlet = ChunkOutlet(stream_info(name, "Markers", 1, 0.0, "string", name))
    ready.wait(60)
    t = pylsl.local_clock() + start_in_s
    outlet.push([["start:Smile-Open:1"]], t)
    outlet.push([["stop:Smile-Open:1"]], t + hold_s)
    stop.wait(60)
    outlet.close()


def test_the_face_follows_the_protocol_markers(unique_name) -> None:
    markers = f"{unique_name}-markers"
    config = ParticipantSourceConfig.model_validate(
        {
            "follow": "markers",
            "simulator": {"script": {"markers_stream": markers}},
            "face_px": 96,
        }
    )
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    pusher = ctx.Process(target=_push_markers, args=(markers, 2.0, 1.0, ready, stop), daemon=True)
    pusher.start()
    truth_name = f"{unique_name}-truth"
    source = ParticipantSource(config, 160, 90, 30.0, truth_name=truth_name, of_stream=unique_name)
    try:
        source.open()
        info = find_stream(StreamSelector(name=truth_name, type="VideoTruth"), timeout_s=10)
        labels = [c["label"] for c in _channels(info)]
        zyg = labels.index("act_zygomaticus_major_l")
        smile = labels.index("phi_smile_l")
        rows, stamps = [], []
        with ChunkInlet(info, max_buflen_s=30) as inlet:
            inlet.open(10)
            deadline = time.monotonic() + 25
            while not source._follower.connected and time.monotonic() < deadline:
                source.read()
            settle = time.monotonic() + 1.0  # the inlet subscribes on its first pulls
            while time.monotonic() < settle:
                source.read()
            ready.set()
            t_end = None
            while time.monotonic() < deadline:
                frame = source.read()
                assert frame is not None and frame.rgb.shape == (90, 160, 3)
                data, ts = inlet.pull(0.0)
                rows += list(data)
                stamps += list(ts)
                t_end = t_end or frame.t_capture_lsl + 4.5
                if frame.t_capture_lsl > t_end:
                    break
            data, ts = inlet.pull(0.5)
            rows += list(data)
            stamps += list(ts)
    finally:
        stop.set()
        source.close()
        pusher.join(10)
    rows, stamps = np.asarray(rows), np.asarray(stamps)
    active = rows[:, zyg] > 0.5
    assert active.any(), "the smile marker never reached the face"
    onset = stamps[np.flatnonzero(rows[:, zyg] > 0.01)[0]]
    offset = stamps[np.flatnonzero(active)[-1]]
    assert 0.8 < offset - onset < 1.6  # held ~1 s plus the ramps
    assert rows[active, smile].min() > 0.5  # and the face smiles


def _channels(info) -> list[dict]:
    from streaming.acquisition.lsl_io import desc_to_dict

    return desc_to_dict(info)["channels"]["channel"]


def test_following_a_missing_emg_stream_is_a_clear_error(unique_name) -> None:
    config = ParticipantSourceConfig(follow="emg", emg_stream=f"{unique_name}-none", wait_s=1.0)
    source = ParticipantSource(config, 160, 90, truth_name=f"{unique_name}-truth")
    with pytest.raises(CameraError, match="follows the EMG simulator"):
        source.open()
    source.close()
