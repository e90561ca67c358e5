"""Video files: lossless round trip, frame-accurate random access, truncated and short files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streaming.errors import SessionFileError
from streaming.recording.video_file import VideoReader, VideoWriter

W, H, RATE = 96, 64, 30.0


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def _write(path: Path, frames: list[np.ndarray], codec: str) -> None:
    with VideoWriter(path, W, H, RATE, codec=codec) as writer:
        for i, frame in enumerate(frames):
            assert writer.write(frame) == i


@pytest.mark.parametrize("codec", ["x264-lossless", "ffv1"])
def test_decoded_frames_equal_the_written_frames_bit_for_bit(tmp_path: Path, codec: str) -> None:
    frames = _frames(40)
    path = tmp_path / "cam.mkv"
    _write(path, frames, codec)
    with VideoReader(path) as reader:
        assert len(reader) == 40
        assert (reader.width, reader.height) == (W, H)
        assert reader.rate_hz == pytest.approx(RATE)
        for got, sent in zip(reader, frames, strict=True):
            assert got.dtype == np.uint8 and got.shape == (H, W, 3)
            np.testing.assert_array_equal(got, sent)


@pytest.mark.parametrize("codec", ["x264-lossless", "ffv1"])
def test_read_returns_exactly_the_frame_written_at_that_index(tmp_path: Path, codec: str) -> None:
    frames = _frames(75, seed=1)  # x264 keyframe every 10 frames: seeks land between keyframes
    path = tmp_path / "cam.mkv"
    _write(path, frames, codec)
    with VideoReader(path) as reader:
        for index in [74, 0, 31, 29, 30, 5, 6, 60, 59, 61, -1]:
            np.testing.assert_array_equal(reader.read(index), frames[index])
        with pytest.raises(IndexError):
            reader.read(75)


def test_depth_frames_round_trip_as_int16(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    depth = [rng.integers(-32768, 32767, (H, W), dtype=np.int16) for _ in range(5)]
    path = tmp_path / "depth.mkv"
    with VideoWriter(path, W, H, RATE, pixel_format="gray16le") as writer:
        for frame in depth:
            writer.write(frame)
    with VideoReader(path) as reader:
        assert reader.depth and len(reader) == 5
        for i in [3, 0, 4]:
            got = reader.read(i)
            assert got.dtype == np.int16
            np.testing.assert_array_equal(got, depth[i])


@pytest.mark.parametrize("codec", ["x264-lossless", "ffv1"])
def test_truncated_file_opens_up_to_its_last_complete_frame(tmp_path: Path, codec: str) -> None:
    frames = _frames(60, seed=3)
    path = tmp_path / "cam.mkv"
    _write(path, frames, codec)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # mid-frame, no Cues, no end of segment
    with VideoReader(cut) as reader:
        assert 25 <= len(reader) < 60
        for i in range(len(reader)):
            np.testing.assert_array_equal(reader.read(i), frames[i])


_KILLED_WRITER = """
import os, sys
import numpy as np
from streaming.recording.video_file import VideoWriter
rng = np.random.default_rng(0)
writer = VideoWriter(sys.argv[1], 96, 64, 30.0, codec=sys.argv[2])
for _ in range(90):
    writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
writer.flush()
os._exit(0)  # killed: no close, no trailer
"""


@pytest.mark.parametrize("codec", ["x264-lossless", "ffv1"])
def test_killed_writer_loses_at_most_about_one_second(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "killed.mkv"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path), codec], check=True)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(90)]
    with VideoReader(path) as reader:
        assert 90 - 31 <= len(reader) <= 90
        np.testing.assert_array_equal(reader.read(len(reader) - 1), frames[len(reader) - 1])


def test_video_shorter_than_its_frame_index_is_a_session_error(tmp_path: Path) -> None:
    path = tmp_path / "cam.mkv"
    _write(path, _frames(10), "ffv1")
    with pytest.raises(SessionFileError, match=r"cam.mkv.*expects 12 frames.*has 10"):
        VideoReader(path, expected_frames=12)
    VideoReader(path, expected_frames=10).close()


def test_missing_or_garbage_file_is_a_session_error(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="not found"):
        VideoReader(tmp_path / "none.mkv")
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(SessionFileError, match=r"junk\.mkv"):
        VideoReader(junk)


def test_writer_rejects_frames_of_the_wrong_shape_or_dtype(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "cam.mkv", W, H, RATE) as writer:
        with pytest.raises(ValueError, match="shape"):
            writer.write(np.zeros((H, W + 2, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="ffv1"):
        VideoWriter(tmp_path / "d.mkv", W, H, RATE, pixel_format="gray16le", codec="x264-lossless")


def test_int8_frames_from_an_lsl_video_stream_are_stored_as_their_bytes(tmp_path: Path) -> None:
    frame = _frames(1, seed=4)[0]
    with VideoWriter(tmp_path / "cam.mkv", W, H, RATE) as writer:
        writer.write(frame.view(np.int8))
    with VideoReader(tmp_path / "cam.mkv") as reader:
        np.testing.assert_array_equal(reader.read(0), frame)
