"""``eifer node camera`` over real LSL: the Video contract stream, frames bit-exact, capture stamps."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time

import numpy as np
import pytest

from streaming.acquisition.camera import SyntheticFaceSource
from streaming.acquisition.camera_frames import decode_frame, frame_shape
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, desc_to_dict, find_stream
from streaming.config import ConfigError, validate


def _run_node(name: str, stop) -> None:
    from nodes.camera import CameraNodeConfig, run_camera
    from streaming.config import validate

    config = validate(
        CameraNodeConfig,
        {"source": "synthetic", "width": 96, "height": 72, "stream": {"name": name}},
    )
    run_camera(config, stop)


def test_node_streams_the_video_contract_with_frames_equal_to_the_source(unique_name) -> None:
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    process = ctx.Process(target=_run_node, args=(unique_name, stop), daemon=True)
    process.start()
    try:
        info = find_stream(StreamSelector(name=unique_name, type="Video"), timeout_s=15)
        desc = desc_to_dict(info)
        assert frame_shape(info) == (72, 96) and desc["pixel_format"] == "rgb24"
        assert desc["synchronization"]["can_drop_samples"] == "true"
        assert desc["camera"]["source"] == "synthetic"
        # the default source id names the stream (as the EMG's): two cameras on one host differ
        assert info.source_id().startswith("eifer-camera-synthetic-" + unique_name + "-")
        with ChunkInlet(info, max_buflen_s=2) as inlet:
            inlet.open()
            rows, stamps = [], []
            deadline = time.monotonic() + 10
            while len(stamps) < 20 and time.monotonic() < deadline:
                data, ts = inlet.pull(0.5)
                rows += list(data)
                stamps += list(ts)
        assert len(stamps) >= 20
        np.testing.assert_allclose(np.diff(stamps[5:]), 1 / 30, atol=2e-3)
        # the first frame of a fresh source equals what the node sent for its frame 0
        reference = SyntheticFaceSource(96, 72, 30.0)
        reference.open()
        frames = [reference._frame(k) for k in range(200)]
        decoded = decode_frame(rows[-1], 72, 96)
        assert any(np.array_equal(decoded, f) for f in frames), "frame not bit-exact"
    finally:
        stop.set()
        process.join(10)


def test_bad_config_values_are_named() -> None:
    from nodes.camera import CameraNodeConfig

    with pytest.raises(ConfigError, match="width"):
        validate(CameraNodeConfig, {"width": -5})
    with pytest.raises(ConfigError, match="source"):
        validate(CameraNodeConfig, {"source": "kinect"})


def test_cli_reports_a_missing_video_file_in_one_line(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nodes.cli",
            "node",
            "camera",
            "--source",
            "opencv",
            "--device",
            str(tmp_path / "x.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "video file not found" in result.stderr and "Traceback" not in result.stderr


def test_shipped_camera_config_validates_and_matches_the_model_defaults() -> None:
    from configs import config_path
    from nodes.camera import CameraNodeConfig
    from streaming.config import load_config

    shipped = load_config(CameraNodeConfig, config_path("nodes", "camera.toml"), [])
    assert shipped == CameraNodeConfig()
    overridden = load_config(
        CameraNodeConfig, config_path("nodes", "camera.toml"), ['source="opencv"', "width=640"]
    )
    assert (overridden.source, overridden.width) == ("opencv", 640)


@pytest.mark.parametrize("size", ["banana", "640x", "0x480", "640x480x3"])
def test_a_bad_size_is_one_line_naming_the_flag(
    size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodes.cli import main

    assert main(["node", "camera", "--size", size, "--duration", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--size {size!r}" in err and "WIDTHxHEIGHT" in err
