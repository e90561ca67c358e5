"""Damaged sessions: a recorder killed mid-session, and files that only start like XDF."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nodes.cli import main
from streaming.recording.export import export_session
from streaming.recording.session_reader import load_recording
from streaming.recording.video_file import VideoWriter
from streaming.recording.xdf_reader import scan_xdf

SAVED = 81  # frames the "killed" recorder got into the video file, of the 90 it indexed


def _kill_recorder(session: Path) -> Path:
    """Turn the fixture's clean session into what a SIGKILLed recorder leaves: no stream footers
    (the XDF ends after the last samples) and a video file short of frames the index lists."""
    xdf = session / "session.xdf"
    first_footer = min(offset for offset, tag in scan_xdf(xdf).chunks if tag == 6)
    xdf.write_bytes(xdf.read_bytes()[:first_footer])
    rng = np.random.default_rng(7)
    with VideoWriter(session / "Camera.mkv", 64, 48, 30.0) as writer:
        for i in range(SAVED):
            frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            frame[0, 0] = (i, 255 - i, 7)  # as the fixture: frame number in the pixels
            writer.write(frame)
    return session


def test_killed_recording_loads_its_saved_frames_with_a_warning(
    session_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = _kill_recorder(session_dir)
    with caplog.at_level(logging.WARNING):
        camera = load_recording(session).stream("Camera")
    assert camera.n_samples == SAVED
    np.testing.assert_array_equal(np.asarray(camera.data)[:, 0], np.arange(SAVED))
    assert any("lists 90 frames" in r.message and "81" in r.message for r in caplog.records)


def test_killed_recording_replays_what_was_saved(
    session_dir: Path, replay: Callable[..., Any]
) -> None:
    got = replay(_kill_recorder(session_dir), ["EMG", "Camera"], speed=3.0)
    frames = got["Camera"].data.view(np.uint8).reshape(-1, 48, 64, 3)
    np.testing.assert_array_equal(frames[:, 0, 0, 0], np.arange(SAVED))
    assert len(got["EMG"].stamps) == 3 * 512  # the EMG was all saved: all of it plays


def test_killed_recording_exports_the_saved_frame_index(session_dir: Path, tmp_path: Path) -> None:
    paths = export_session(_kill_recorder(session_dir), "npz", tmp_path / "out")
    camera = np.load(next(p for p in paths if p.name == "Camera.npz"), allow_pickle=False)
    assert len(camera["timestamps"]) == SAVED and camera["data"][-1, 0] == SAVED - 1


@pytest.mark.parametrize("garbage", [b"garbage \x01\x02\x03 more", b"\x01\x02", b""])
@pytest.mark.parametrize("command", [["replay"], ["export", "--to", "npz"]])
def test_xdf_magic_followed_by_garbage_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], garbage: bytes, command: list[str]
) -> None:
    bad = tmp_path / "bad.xdf"
    bad.write_bytes(b"XDF:" + garbage)
    argv = [command[0], str(bad), *command[1:], "--log-level", "ERROR"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a readable XDF file" in err and str(bad) in err
