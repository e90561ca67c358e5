"""Frame sources: pacing and capture stamps, a real video file through OpenCV, RealSense via a
software device."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.acquisition.camera import CameraError, OpenCVSource, SyntheticFaceSource
from streaming.acquisition.camera_frames import decode_frame, encode_frame


def test_synthetic_source_is_paced_at_its_rate_with_monotonic_capture_stamps() -> None:
    source = SyntheticFaceSource(160, 120, 50.0)
    source.open()
    frames = [source.read() for _ in range(25)]
    source.close()
    stamps = np.array([f.t_capture_lsl for f in frames])
    np.testing.assert_allclose(np.diff(stamps), 1 / 50, atol=1e-9)
    assert frames[0].rgb.shape == (120, 160, 3) and frames[0].rgb.dtype == np.uint8
    assert [f.index for f in frames] == list(range(25))
    assert not np.array_equal(frames[0].rgb, frames[-1].rgb), "the face should move"


def test_frames_survive_the_int8_stream_encoding_bit_exact() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    chunk = encode_frame(rgb)
    assert chunk.shape == (1, 48 * 64 * 3) and chunk.dtype == np.int8
    np.testing.assert_array_equal(decode_frame(chunk[0], 48, 64), rgb)


def test_opencv_reads_a_video_file_in_rgb_paced_at_its_fps(tmp_path) -> None:
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(10):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :, 2] = 200  # BGR red
        frame[0, 0] = i
        writer.write(frame)
    writer.release()
    source = OpenCVSource(str(path))
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert len(frames) == 10 and source.rate_hz == pytest.approx(25.0)
    assert frames[0].rgb[20, 20, 0] > 150 and frames[0].rgb[20, 20, 2] < 50  # now RGB
    np.testing.assert_allclose(np.diff([f.t_capture_lsl for f in frames]), 1 / 25, atol=1e-9)


def test_missing_video_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CameraError, match="video file not found"):
        OpenCVSource(str(tmp_path / "absent.mp4")).open()
