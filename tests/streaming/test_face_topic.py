"""The ``face`` bus topic: encoded off the frame loop, checked without decoding, readable by any
msgpack client (streaming/pipeline/face_preview.py, streaming/bus/jpeg.py,
streaming/bus/schema.py)."""

from __future__ import annotations

import time
from typing import Any

import cv2
import msgpack
import numpy as np
import pytest
import zmq
from skimage.data import astronaut

from streaming.bus.jpeg import JpegError, encode_jpeg, jpeg_size
from streaming.bus.pubsub import Publisher, decode, encode
from streaming.bus.schema import FACE_IMAGE_MAX_BYTES, SchemaError, validate
from streaming.errors import PayloadError
from streaming.pipeline.face_preview import FacePreview, PreviewJob, encode_face_fields

FRAME = cv2.resize(astronaut(), (1280, 720), interpolation=cv2.INTER_AREA)  # a real face photo
BOX = np.array([560.0, 60.0, 220.0, 260.0], np.float32)  # x, y, w, h in frame pixels
CROP = cv2.resize(astronaut()[0:260, 120:380], (224, 224))


def _job(**changes: Any) -> PreviewJob:
    values: dict[str, Any] = {
        "t": 12.5,
        "frame": 7,
        "rgb": FRAME,
        "face_detected": True,
        "face_box": BOX,
        "landmarks": np.tile(BOX[:2], (478, 1)).astype(np.float32) + 10.0,
        "crop": CROP,
    }
    values.update(changes)
    return PreviewJob(**values)


def _face(**changes: Any) -> dict[str, Any]:
    fields = encode_face_fields(_job())
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def _roundtrip(fields: dict[str, Any]):
    return validate(decode(encode("face", fields, t=12.5, frame=7)))


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header rewritten to claim ``width`` x ``height`` pixels."""
    sof = jpeg.index(b"\xff\xc0")
    patched = bytearray(jpeg)
    patched[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    patched[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(patched)


def test_the_preview_is_a_small_jpeg_with_the_box_in_its_pixels() -> None:
    message = _roundtrip(encode_face_fields(_job()))
    f = message.fields
    assert message.t == 12.5 and message.frame == 7
    assert f["image_size"] == [320, 180] and f["source_size"] == [1280, 720]
    assert f["scale"] == pytest.approx(0.25)
    np.testing.assert_allclose(f["face_box"], BOX * 0.25)
    assert f["landmarks"].shape == (478, 2)
    np.testing.assert_allclose(f["landmarks"][0], (BOX[:2] + 10.0) * 0.25)
    assert f["crop_size"] == [112, 112] and f["face_detected"] is True
    image = cv2.imdecode(np.frombuffer(f["image"], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (180, 320, 3)
    # the picture is the frame's: downscaled, not something else
    expected = cv2.resize(FRAME, (320, 180), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.abs(image.astype(float) - expected).mean() < 6.0
    crop = cv2.imdecode(np.frombuffer(f["crop"], np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (112, 112, 3)
    assert 5_000 < len(f["image"]) < 40_000 and len(f["crop"]) < 15_000


def test_without_a_face_the_box_and_crop_are_nil_and_small_frames_are_not_upscaled() -> None:
    small = FRAME[::4, ::4].copy()  # 320 x 180
    f = _roundtrip(
        encode_face_fields(
            _job(rgb=small, face_detected=False, face_box=None, crop=None, landmarks=None)
        )
    ).fields
    assert f["face_box"] is None and f["crop"] is None and f["crop_size"] is None
    assert f["image_size"] == [320, 180] and f["scale"] == 1.0 and "landmarks" not in f


def test_jpeg_size_reads_the_frame_header_of_real_jpegs() -> None:
    assert jpeg_size(encode_jpeg(FRAME[:100, :60])) == (60, 100)
    progressive = cv2.imencode(".jpg", FRAME[:50, :70], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert jpeg_size(progressive.tobytes()) == (70, 50)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "no start-of-image"),
        (cv2.imencode(".png", FRAME[:8, :8])[1].tobytes(), "not a JPEG"),
        (encode_jpeg(FRAME[:40, :40])[:-300], "truncated"),
        (b"\xff\xd8\xff\xd9", "no frame header"),
        (b"\xff\xd8\x00\x00\xff\xd9", "no marker at byte 2"),
        (b"\xff\xd8\xff\xe0\xff\xff\xff\xd9", "overruns"),
        (_with_size(encode_jpeg(FRAME[:40, :40]), 0, 40), "0 x 40"),
    ],
)
def test_jpeg_size_names_what_is_wrong(data: bytes, complaint: str) -> None:
    with pytest.raises(JpegError, match=complaint):
        jpeg_size(data)


JPEG = encode_jpeg(FRAME[:180, :320])


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"image": ...}, "face lacks image"),
        ({"scale": ...}, "face lacks scale"),
        ({"image": "a picture"}, "face.image must be JPEG bytes"),
        ({"image": [1, 2, 3]}, "face.image must be JPEG bytes"),
        ({"image": FRAME[:4, :4]}, "face.image must be JPEG bytes"),  # an array is no JPEG
        ({"image": cv2.imencode(".png", FRAME[:180, :320])[1].tobytes()}, "not a JPEG"),
        ({"image": JPEG[: len(JPEG) // 2]}, "truncated"),
        ({"image": _with_size(JPEG, 60000, 60000)}, "60000 x 60000 pixels, larger than 1280"),
        ({"image": b"\xff\xd8" + bytes(FACE_IMAGE_MAX_BYTES) + b"\xff\xd9"}, "more than"),
        ({"image_size": [321, 180]}, r"image_size \[321, 180\] is not the JPEG's 320 x 180"),
        ({"image_size": [320]}, r"must be \[width, height\]"),
        ({"image_size": [2**40, 180]}, "sides of 1..1280"),
        ({"image_size": ["320", 180]}, "must be an integer"),
        ({"source_size": [-1, 720]}, "sides of 1.."),
        ({"scale": 0.0}, r"a factor in \(0, 16\]"),
        ({"scale": float("nan")}, r"a factor in \(0, 16\]"),
        ({"scale": "0.25"}, "must be a number"),
        ({"face_detected": 1}, "must be true or false"),
        ({"face_box": [1.0, 2.0, 3.0]}, "4 numbers"),
        ({"face_box": "left"}, "face.face_box must be a numeric vector"),
        ({"landmarks": np.zeros((478, 4), np.float32)}, r"an \(N, 2\) or \(N, 3\)"),
        ({"crop": b"not a jpeg"}, "face.crop: not a JPEG"),
        ({"crop_size": [224, 224]}, r"crop_size \[224, 224\] is not the JPEG's 112 x 112"),
        ({"crop_size": None}, "crop_size None is not"),
    ],
)
def test_bad_face_fields_are_named_rejections(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(SchemaError, match=complaint) as caught:
        _roundtrip(_face(**changes))
    assert isinstance(caught.value, PayloadError)


def test_a_plain_pyzmq_msgpack_peer_reads_the_face_topic() -> None:
    """What a client in another language does: SUB, msgpack, bytes are JPEG, arrays are maps."""
    with Publisher("tcp://127.0.0.1:*") as publisher:
        peer = zmq.Context.instance().socket(zmq.SUB)
        peer.setsockopt(zmq.LINGER, 0)
        peer.setsockopt(zmq.SUBSCRIBE, b"face")
        peer.connect(publisher.address)
        try:
            parts = None
            deadline = time.monotonic() + 20
            while parts is None and time.monotonic() < deadline:  # slow joiner: resend
                publisher.publish("face", encode_face_fields(_job()), t=12.5, frame=7)
                if peer.poll(200):
                    parts = peer.recv_multipart()
        finally:
            peer.close()
    assert parts is not None and parts[0] == b"face"
    payload = msgpack.unpackb(parts[1], raw=False)
    assert payload["schema"] == 1 and payload["t"] == 12.5 and payload["frame"] == 7
    fields = payload["fields"]
    assert isinstance(fields["image"], bytes)  # msgpack bin, not a string, not pickle
    image = cv2.imdecode(np.frombuffer(fields["image"], np.uint8), cv2.IMREAD_COLOR)
    assert [image.shape[1], image.shape[0]] == fields["image_size"] == [320, 180]
    box = fields["face_box"]
    values = np.frombuffer(box["data"], np.dtype(box["dtype"])).reshape(box["shape"])
    np.testing.assert_allclose(values, BOX * 0.25)


def test_the_preview_keeps_its_rate_and_never_makes_the_frame_loop_wait() -> None:
    preview = FacePreview(5.0)
    published: list[int] = []
    offer_ms: list[float] = []
    try:
        for index in range(90):  # 3 s of 30 fps frames, fed as fast as possible
            t0 = time.perf_counter()
            preview.offer(_job(t=100.0 + index / 30.0, frame=index))
            offer_ms.append(1e3 * (time.perf_counter() - t0))
            result = preview.take()
            if result is not None:
                published.append(result.frame)
                validate(decode(encode("face", result.fields, t=result.t, frame=result.frame)))
        deadline = time.monotonic() + 5
        while preview.offered > len(published) + preview.failed and time.monotonic() < deadline:
            result = preview.take()
            if result is not None:
                published.append(result.frame)
            time.sleep(0.01)
    finally:
        preview.close()
    # never more than one every 0.2 s of capture time; busy worker: skipped, counted
    assert np.all(np.diff(published) >= 6)
    assert len(published) == preview.offered and 1 <= len(published) <= 15
    assert preview.offered + preview.busy_skipped >= 1 and preview.failed == 0
    # the frame loop only hands over references: far below one encoding (~1-3 ms)
    assert np.median(offer_ms) < 0.5


def test_a_preview_rate_of_zero_is_off() -> None:
    preview = FacePreview(0.0)
    assert not preview.offer(_job()) and preview.take() is None and preview.offered == 0
    preview.close()


def test_a_frame_that_cannot_be_encoded_costs_its_preview_not_the_worker() -> None:
    preview = FacePreview(30.0)
    try:
        preview.offer(_job(t=1.0, rgb=np.zeros((0, 0, 3), np.uint8)))
        deadline = time.monotonic() + 5
        while preview.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert preview.failed == 1 and "face preview" in (preview.last_error or "")
        while not preview.offer(_job(t=2.0)) and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker is free again
        result = None
        while result is None and time.monotonic() < deadline:
            result = preview.take()
            time.sleep(0.01)
    finally:
        preview.close()
    assert result is not None and result.frame == 7
