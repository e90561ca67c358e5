"""LSL chunk I/O over the real liblsl on loopback, outlets in child processes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from streaming.acquisition.lsl_io import (
    ChunkInlet,
    ChunkOutlet,
    StreamSelector,
    channel_labels,
    desc_to_dict,
    find_stream,
    stream_info,
)
from streaming.errors import StreamFormatError, StreamNotFoundError


def _pull_at_least(inlet: ChunkInlet, n: int, timeout_s: float = 5.0):
    data, stamps = [], []
    deadline = time.monotonic() + timeout_s
    while sum(len(s) for s in stamps) < n and time.monotonic() < deadline:
        chunk, ts = inlet.pull(timeout_s=0.5)
        if len(ts):
            data.append(chunk)
            stamps.append(ts)
    return data, stamps


def test_find_stream_returns_full_metadata_with_labels_units_and_desc(spawn_outlet, unique_name):
    spawn_outlet(
        name=unique_name,
        channels=3,
        labels=["F1", "F2", "counter"],
        unit="microvolts",
        desc={"acquisition": {"manufacturer": "sim", "gain": 100}, "tags": ["a", "b"]},
    )
    info = find_stream(StreamSelector(name=unique_name), timeout_s=10)
    assert channel_labels(info) == ["F1", "F2", "counter"]
    desc = desc_to_dict(info)
    assert desc["acquisition"] == {"manufacturer": "sim", "gain": "100"}
    assert desc["tags"] == ["a", "b"]
    assert desc["channels"]["channel"][0] == {"label": "F1", "unit": "microvolts"}


def test_inlet_pulls_numpy_chunks_in_order_without_gaps(spawn_outlet, unique_name):
    spawn_outlet(name=unique_name, channels=4, rate_hz=200.0)
    info = find_stream(StreamSelector(name=unique_name, type="EMG"), timeout_s=10)
    with ChunkInlet(info) as inlet:
        inlet.open()
        data, stamps = _pull_at_least(inlet, 100)
    values = np.concatenate(data)
    assert values.dtype == np.float32 and values.shape[1] == 4
    counter = values[:, 0]
    assert np.all(np.diff(counter) == 1), "samples lost or duplicated"
    assert np.all(np.diff(np.concatenate(stamps)) >= 0)


def test_string_streams_arrive_as_rows_of_str(spawn_outlet, unique_name):
    spawn_outlet(name=unique_name, stype="Markers", channels=1, fmt="string", rate_hz=0.0, chunk=1)
    info = find_stream(StreamSelector(name=unique_name), timeout_s=10)
    with ChunkInlet(info) as inlet:
        rows: list = []
        deadline = time.monotonic() + 5
        while len(rows) < 3 and time.monotonic() < deadline:
            chunk, _ = inlet.pull(timeout_s=0.5)
            rows += chunk
    assert len(rows) >= 3 and all(r[0].startswith("m") for r in rows)


def test_missing_stream_error_lists_visible_streams(spawn_outlet, unique_name):
    spawn_outlet(name=unique_name, channels=1)
    with pytest.raises(StreamNotFoundError, match=unique_name) as error:
        find_stream(StreamSelector(name=unique_name + "-absent"), timeout_s=1.5)
    assert "Visible:" in str(error.value)


def test_two_matching_streams_are_refused_until_a_source_id_chooses(spawn_outlet, unique_name):
    spawn_outlet(name=unique_name, channels=1, source_id=unique_name + "-a")
    spawn_outlet(name=unique_name, channels=1, source_id=unique_name + "-b")
    find_stream(StreamSelector(source_id=unique_name + "-b"), timeout_s=10)
    time.sleep(0.5)
    with pytest.raises(StreamFormatError, match="Add a source_id"):
        find_stream(StreamSelector(name=unique_name), timeout_s=3)
    info = find_stream(StreamSelector(name=unique_name, source_id=unique_name + "-b"), 5)
    assert info.source_id() == unique_name + "-b"


def test_outlet_refuses_chunks_of_the_wrong_shape(unique_name):
    outlet = ChunkOutlet(stream_info(unique_name, "EMG", 22, 4096, "float32", unique_name))
    try:
        with pytest.raises(StreamFormatError, match=r"expected \(n_samples, 22\)"):
            outlet.push(np.zeros((32, 21), np.float32))
        with pytest.raises(StreamFormatError, match="2 timestamps for 3 samples"):
            outlet.push_stamped(np.zeros((3, 22)), np.zeros(2))
    finally:
        outlet.close()


def test_stream_info_validates_its_arguments(unique_name):
    with pytest.raises(ValueError, match="unknown channel format"):
        stream_info(unique_name, "EMG", 2, 10, "float16", "x")
    with pytest.raises(ValueError, match="2 channel labels for 3 channels"):
        stream_info(unique_name, "EMG", 3, 10, "float32", "x", channel_labels=["a", "b"])


def test_a_labs_own_lsl_api_cfg_is_honoured_not_overridden(tmp_path):
    """A lab's ``~/lsl_api/lsl_api.cfg`` (KnownPeers, SessionID: how LabRecorder's users set up
    several computers) holds for every node, without ``LSLAPICFG``: configure_lsl leaves it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "lsl_api").mkdir()
    (tmp_path / "lsl_api" / "lsl_api.cfg").write_text(
        "[lab]\nSessionID = lab-of-tmp\n[ports]\nIPv6 = disable\n[log]\nlevel = -2\n"
    )
    code = (
        "from streaming.acquisition.lsl_io import configure_lsl, lab_lsl_config\n"
        "configure_lsl()\n"
        "import pylsl\n"
        "info = pylsl.StreamOutlet(pylsl.StreamInfo('cfg-probe', 'x', 1, 0, 'float32')).get_info()\n"
        "print(lab_lsl_config(), info.session_id())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1].split() == [
        str(tmp_path / "lsl_api" / "lsl_api.cfg"),
        "lab-of-tmp",
    ]
