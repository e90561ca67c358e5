"""The RealSense path without a camera: frames injected through ``pyrealsense2.software_device``
reach the same conversion code (pixels, frame numbers, capture time in LSL time)."""

from __future__ import annotations

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")

from streaming.acquisition.camera import CameraError, RealSenseSource  # noqa: E402


def _software_colour(width=64, height=48):
    device = rs.software_device()
    sensor = device.add_sensor("Color")
    intrinsics = rs.intrinsics()
    intrinsics.width, intrinsics.height = width, height
    intrinsics.ppx, intrinsics.ppy, intrinsics.fx, intrinsics.fy = width / 2, height / 2, 50, 50
    intrinsics.model, intrinsics.coeffs = rs.distortion.none, [0.0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 0
    stream.width, stream.height, stream.fps, stream.bpp = width, height, 30, 3
    stream.fmt, stream.intrinsics = rs.format.rgb8, intrinsics
    profile = sensor.add_video_stream(stream)
    queue = rs.frame_queue(10)
    sensor.open(profile)
    sensor.start(queue)
    return device, sensor, profile, queue


def _inject(sensor, profile, queue, pixels, t_ms, domain, number, metadata=None):
    for key, value in (metadata or {}).items():
        sensor.set_metadata(key, value)
    frame = rs.software_video_frame()
    frame.pixels, frame.bpp, frame.stride = pixels, 3, pixels.shape[1] * 3
    frame.timestamp, frame.domain, frame.frame_number = t_ms, domain, number
    frame.profile = profile.as_video_stream_profile()
    sensor.on_video_frame(frame)
    return queue.wait_for_frame(2000).as_video_frame()


def test_global_time_frames_are_mapped_to_mid_exposure_lsl_time() -> None:
    device, sensor, profile, queue = _software_colour()
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    metadata = {
        rs.frame_metadata_value.frame_timestamp: 2_000_000,  # camera clock, microseconds
        rs.frame_metadata_value.sensor_timestamp: 1_990_000,  # mid-exposure, 10 ms earlier
    }
    frame = _inject(
        sensor,
        profile,
        queue,
        pixels,
        1_700_000_000_000.0,
        rs.timestamp_domain.global_time,
        7,
        metadata,
    )
    source = RealSenseSource(64, 48)
    source._offset_s = 1_699_999_000.0  # system time - LSL time, as measured at open()
    captured = source.to_captured(frame, None, arrival_lsl=-1.0)
    np.testing.assert_array_equal(captured.rgb, pixels)
    assert captured.index == 7
    assert captured.t_capture_lsl == pytest.approx(1000.0 - 0.010, abs=1e-6)
    assert source.timestamp_method == "mid-exposure"
    sensor.stop()
    sensor.close()
    del device


def test_hardware_clock_frames_fall_back_to_arrival_time() -> None:
    device, sensor, profile, queue = _software_colour()
    pixels = np.zeros((48, 64, 3), np.uint8)
    frame = _inject(sensor, profile, queue, pixels, 5.0, rs.timestamp_domain.hardware_clock, 1)
    source = RealSenseSource(64, 48)
    assert source.to_captured(frame, None, arrival_lsl=42.5).t_capture_lsl == 42.5
    assert source.timestamp_method == "arrival"
    sensor.stop()
    sensor.close()
    del device


def test_no_camera_connected_is_a_clear_error() -> None:
    if len(rs.context().query_devices()):
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(CameraError, match="no RealSense camera connected"):
        RealSenseSource().open()


def _sensor_with_exposure():
    device = rs.software_device()
    sensor = device.add_sensor("Color")
    # option_range(min, max, default, step) as pyrealsense2 binds it: exposure 1..10000 us
    sensor.add_option(rs.option.exposure, rs.option_range(1, 10000, 1, 1), True)
    return device, sensor


def test_hardware_options_are_set_on_the_sensors_that_support_them() -> None:
    from streaming.acquisition.camera import apply_sensor_options

    device, sensor = _sensor_with_exposure()
    assert apply_sensor_options([sensor], {"exposure": 300}) == {"exposure": 300.0}
    assert sensor.get_option(rs.option.exposure) == 300.0
    del device


def test_bad_hardware_options_are_clear_errors() -> None:
    from streaming.acquisition.camera import apply_sensor_options

    device, sensor = _sensor_with_exposure()
    with pytest.raises(CameraError, match="unknown RealSense option 'exposur'"):
        apply_sensor_options([sensor], {"exposur": 300})
    with pytest.raises(CameraError, match="'gain' is supported by none of"):
        apply_sensor_options([sensor], {"gain": 64})
    with pytest.raises(CameraError, match=r"exposure=1000000.*valid: 1\.\.10000"):
        apply_sensor_options([sensor], {"exposure": 1e6})
    del device
