"""Property-based fuzzing of the bus decoder and every subscriber with Hypothesis.

Arbitrary msgpack payloads (random values, array maps with odd dtypes and huge or negative
shapes, contract field names with wrong types) on arbitrary topics go through what each consumer
runs: :func:`streaming.bus.pubsub.decode`, :func:`streaming.bus.schema.validate`, the display's
:meth:`~nodes.display.server.DisplayServer.accept` and hub cache, and the terminal view of
``eifer listen`` and the demo. Nothing may raise outside the named errors (PayloadError family),
and what the display caches for later pages must itself follow the contract.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nodes.listen import TerminalView
from streaming.bus.jpeg import encode_jpeg
from streaming.bus.pubsub import TOPICS, Message, decode, encode
from streaming.bus.schema import TOPIC_FIELDS, UnknownTopicError, validate
from streaming.errors import PayloadError

FUZZ = settings(
    max_examples=400,
    deadline=None,  # a loaded two-core machine: no per-example time limit
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LABELS = [f"F{i}" for i in range(1, 23)]
FIELD_NAMES = sorted({name for checks, _ in TOPIC_FIELDS.values() for name in checks})
TOPIC_NAMES = [*TOPICS, "hello", "display", "feedback", "feedback_config", "", "muscles"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=16)
)
array_maps = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["<f4", "<f8", "|u1", "<i2", "|b1", "|O", "<c8", "i4,i4", "U3"])
        | st.text(max_size=5)
        | scalars,
        "shape": st.lists(
            st.sampled_from([0, 1, 2, 3, 22, 55, 2**32, 2**63, 2**64 - 1, -1]), max_size=4
        )
        | scalars,
        "data": st.binary(max_size=64) | scalars,
    }
)
numeric_arrays = arrays(
    st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.bool_]),
    st.sampled_from([0, 1, 3, 22, 55]) | st.tuples(st.integers(0, 3), st.integers(0, 3)),
)
vectors = st.lists(st.floats(width=32) | st.none() | st.integers(-5, 5), max_size=25)
channels = st.lists(st.sampled_from(LABELS) | st.text(max_size=3), max_size=25) | st.just(LABELS)
values = st.recursive(
    scalars | array_maps | numeric_arrays | vectors | channels,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), values, max_size=8)


def _packable(value: Any) -> Any:
    """Numpy arrays as the bus encodes them; everything else as it is."""
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.tobytes()}
    if isinstance(value, dict):
        return {k: _packable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_packable(v) for v in value]
    return value


@st.composite
def bus_parts(draw: st.DrawFn) -> list[bytes]:
    """Raw multipart messages: mostly near the contract, some anything at all."""
    topic = draw(st.sampled_from(TOPIC_NAMES) | st.text(max_size=10)).encode()
    kind = draw(st.sampled_from(["payload", "payload", "payload", "value", "bytes", "parts"]))
    if kind == "bytes":
        return [topic, draw(st.binary(max_size=64))]
    if kind == "parts":
        return draw(st.lists(st.binary(max_size=8), max_size=4))
    if kind == "value":
        return [topic, msgpack.packb(_packable(draw(values)), use_bin_type=True)]
    payload = {
        "schema": draw(st.just(1) | scalars),
        "t": draw(st.floats(0, 1e6) | scalars),
        "frame": draw(st.integers(0, 2**64 - 1) | scalars),
        "fields": draw(fields | values),
    }
    if draw(st.booleans()):
        del payload[draw(st.sampled_from(sorted(payload)))]
    return [topic, msgpack.packb(_packable(payload), use_bin_type=True)]


numbers = st.none() | st.floats() | st.integers(-(2**63), 2**63) | st.floats(width=32)
short_text = st.text(max_size=12)
PLAUSIBLE = {  # values of the right type for each contract field (of any size or content)
    "channels": channels,
    "emg_measured": numeric_arrays | vectors,
    "emg_measured_uv": numeric_arrays | vectors,
    "emg_from_video": numeric_arrays | vectors,
    "emg_from_video_uv": numeric_arrays | vectors,
    "normalised": st.booleans(),
    "emg_missing": st.booleans(),
    "emg_sample_index": numbers,
    "phi_video": numeric_arrays | vectors,
    "phi_emg": numeric_arrays | vectors,
    "pose": numeric_arrays | vectors,
    "face_detected": st.booleans(),
    "face_box": st.none() | vectors,
    "streams": st.dictionaries(
        short_text,
        st.fixed_dictionaries(
            {},
            optional={
                "connected": st.booleans(),
                "rate_hz": numbers,
                "error": st.none() | short_text,
            },
        ),
        max_size=3,
    ),
    "latency_ms": st.dictionaries(
        short_text, st.fixed_dictionaries({}, optional={"p50": numbers, "p99": numbers}), max_size=3
    ),
    "frames": st.dictionaries(short_text, numbers, max_size=4),
    "errors": st.lists(short_text, max_size=3),
    "text": short_text,
    "repetition": st.none() | st.integers(-(2**63), 2**63),
    "index": st.none() | st.integers(-5, 2**64 - 1),
    "total": st.none() | st.integers(-5, 5),
    "remaining_s": numbers,
}
JPEG_SIZES = [(32, 18), (8, 8)]
JPEGS = [encode_jpeg(np.full((h, w, 3), 90, np.uint8)) for w, h in JPEG_SIZES]
jpegs = (
    st.sampled_from(JPEGS)
    | st.binary(max_size=64)
    | st.sampled_from(JPEGS).flatmap(
        lambda data: st.integers(0, len(data)).map(lambda cut: data[:cut])  # truncated pictures
    )
)
sizes = st.lists(st.integers(-2, 2**16) | st.just(32) | st.just(18), min_size=0, max_size=3)
PLAUSIBLE.update(
    {
        "image": jpegs,
        "crop": st.none() | jpegs,
        "image_size": sizes | st.just([32, 18]),
        "crop_size": st.none() | sizes | st.just([8, 8]),
        "source_size": sizes,
        "scale": numbers,
        "landmarks": st.none() | numeric_arrays,
    }
)
STATE_WORDS = st.sampled_from(["good", "check", "bad"]) | st.text(max_size=5)
PLAUSIBLE.update(
    {
        "t_lsl": numbers,
        "sample_index": st.integers(-(2**63), 2**64 - 1) | numbers,
        "states": st.lists(STATE_WORDS, max_size=25),
        "reasons": st.lists(st.lists(short_text | st.none(), max_size=3), max_size=25),
        "metrics": st.dictionaries(short_text, numeric_arrays | vectors | scalars, max_size=4),
        "mains_hz": numbers,
        "bridge_partner": channels,
    }
)
TEXT_FIELDS = ("backend", "feature", "profile", "movement", "phase")


@st.composite
def contract_like(draw: st.DrawFn) -> list[bytes]:
    """Messages of the contract topics with fields of the right types (of any content and
    length), sometimes with one field replaced by anything at all."""
    topic = draw(st.sampled_from(TOPICS))
    checks, required = TOPIC_FIELDS[topic]
    names = draw(st.sets(st.sampled_from(sorted(checks)))) | set(required)
    chosen = {}
    for name in sorted(names):
        plausible = PLAUSIBLE.get(name, st.none() | short_text if name in TEXT_FIELDS else values)
        chosen[name] = draw(plausible)
    if topic == "muscle" and draw(st.booleans()):  # consistent lengths, so that many pass
        n = len(chosen["channels"])
        for name in sorted(names - {"channels", "normalised", "emg_missing", "emg_sample_index"}):
            chosen[name] = draw(
                arrays(np.float32, n) | st.lists(st.floats(), min_size=n, max_size=n)
            )
    if topic == "quality" and draw(st.booleans()):  # consistent lengths, so that many pass
        n = len(chosen["channels"])
        chosen["states"] = draw(
            st.lists(st.sampled_from(["good", "check", "bad"]), min_size=n, max_size=n)
        )
        chosen["reasons"] = draw(st.lists(st.lists(short_text, max_size=2), min_size=n, max_size=n))
        chosen["metrics"] = draw(
            st.dictionaries(
                short_text,
                arrays(np.float32, n) | st.lists(st.floats() | st.none(), min_size=n, max_size=n),
                max_size=3,
            )
        )
        chosen["sample_index"] = draw(st.integers(0, 2**62))
        chosen["mains_hz"] = draw(st.sampled_from([50.0, 60.0]) | st.floats())
    if topic == "face" and draw(st.booleans()):  # consistent pictures, so that many pass
        for picture, size in (("image", "image_size"), ("crop", "crop_size")):
            if picture == "image" or draw(st.booleans()):
                k = draw(st.sampled_from(range(len(JPEGS))))
                chosen[picture], chosen[size] = JPEGS[k], list(JPEG_SIZES[k])
        chosen["scale"] = draw(st.floats(0.01, 16.0))
        chosen["face_detected"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        chosen[draw(st.sampled_from(sorted(checks)))] = draw(values)
    return encode(topic, chosen, t=draw(st.none() | st.floats(0, 1e6)), frame=None)


def _decoded(parts: list[bytes]) -> Message | None:
    try:
        return decode(parts)
    except PayloadError:
        return None  # the named error: what the subscriber counts and logs


@FUZZ
@given(bus_parts())
def test_decoder_raises_only_payload_errors(parts: list[bytes]) -> None:
    message = _decoded(parts)
    if message is not None:
        assert isinstance(message.topic, str) and isinstance(message.fields, dict)
        assert message.t is None or np.isfinite(message.t)


@FUZZ
@given(bus_parts() | contract_like())
def test_schema_raises_only_payload_errors_and_normalises_what_passes(parts) -> None:
    message = _decoded(parts)
    if message is None:
        return
    try:
        checked = validate(message)
    except PayloadError:
        return
    if checked.topic == "muscle":
        n = len(checked.fields["channels"])
        for value in checked.fields.values():
            if isinstance(value, np.ndarray):
                assert value.shape == (n,) and value.dtype == np.float64
    if checked.topic == "quality":
        f = checked.fields
        n = len(f["channels"])
        assert len(f["states"]) == len(f["reasons"]) == n
        assert set(f["states"]) <= {"good", "check", "bad"}
        assert all(isinstance(r, str) for reasons in f["reasons"] for r in reasons)
        for value in f["metrics"].values():
            assert value.shape == (n,) and value.dtype == np.float64


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@FUZZ
@given(bus_parts() | contract_like())
def test_terminal_view_prints_one_clean_line_for_any_decoded_message(parts) -> None:
    message = _decoded(parts)
    if message is None:
        return
    view = TerminalView()
    line = view.line(message)
    assert isinstance(line, str) and not _CONTROL.search(line)
    assert all(isinstance(text, str) for text in view.summary(rejected=1))


@functools.cache
def _display():
    """One display server (not started: its message path needs no sockets)."""
    from nodes.display.server import DisplayConfig, DisplayServer

    return DisplayServer(DisplayConfig(port=0, target="Smile-Open"))


@settings(FUZZ, max_examples=150)  # batches of up to 6 messages each
@given(st.lists(bus_parts() | contract_like(), max_size=6))
def test_display_caches_only_contract_messages_whatever_arrives(batch) -> None:
    server = _display()
    server.hub.latest.clear()
    for parts in batch:
        message = _decoded(parts)
        if message is None:
            continue
        try:
            out = server.accept(message)
        except UnknownTopicError:
            assert message.topic not in TOPICS
            continue
        except PayloadError:
            continue
        for topic, text in out:
            server.hub.broadcast(topic, text)
    assert set(server.hub.latest) <= {*TOPICS, "feedback"}
    for topic, text in server.hub.latest.items():
        body = json.loads(text)  # strict JSON: no NaN, what the page parses
        assert body["topic"] == topic
        if topic in TOPICS:  # what later pages are sent follows the contract
            fields = body["fields"]
            if topic == "face":  # the page gets the JPEGs as base64 text
                for key in ("image", "crop"):
                    if fields.get(key) is not None:
                        fields[key] = base64.b64decode(fields[key], validate=True)
            validate(Message(topic, fields, body["t"], body["frame"]))


@pytest.mark.parametrize(
    "parts",
    [
        [
            b"muscle",
            msgpack.packb(
                {
                    "schema": 1,
                    "fields": {"x": {"dtype": "<f4", "shape": [2**32, 2**32], "data": b""}},
                }
            ),
        ],
        encode("hello", {"labels": 3}),
        encode("instruction", {"text": 1}),
        encode("muscle", {"channels": ["F1"]}),
    ],
)
def test_the_messages_that_broke_the_display_are_named_errors(parts) -> None:
    with pytest.raises(PayloadError):
        _display().accept(decode(parts))
