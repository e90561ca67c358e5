"""The ZeroMQ bus: schema-1 msgpack payloads over real PUB/SUB sockets on loopback."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
import zmq

from streaming.bus import SCHEMA_VERSION, Publisher, Subscriber, decode, encode
from streaming.errors import PayloadError


def test_encode_decode_round_trip_keeps_arrays_bit_exact() -> None:
    emg = np.linspace(0, 1, 22, dtype=np.float32)
    parts = encode(
        "muscle", {"emg_measured": emg, "channels": ["F1", "F2"], "missing": False}, t=12.5, frame=7
    )
    message = decode(parts)
    assert message.topic == "muscle" and message.t == 12.5 and message.frame == 7
    assert message.schema == SCHEMA_VERSION
    np.testing.assert_array_equal(message.fields["emg_measured"], emg)
    assert message.fields["emg_measured"].dtype == np.float32
    assert message.fields["channels"] == ["F1", "F2"] and message.fields["missing"] is False


def test_payload_is_plain_msgpack_readable_without_this_library() -> None:
    _, payload = encode("status", {"latency_ms": {"dsp": 1.5}, "a": np.zeros((2, 3), np.int16)})
    raw = msgpack.unpackb(payload, raw=False)
    assert raw["schema"] == 1 and raw["fields"]["latency_ms"] == {"dsp": 1.5}
    assert raw["fields"]["a"] == {"dtype": "<i2", "shape": [2, 3], "data": bytes(12)}


@pytest.mark.parametrize(
    ("parts", "complaint"),
    [
        ([b"muscle"], "2 message parts"),
        ([b"muscle", b"\xc1garbage"], "not msgpack"),
        ([b"muscle", msgpack.packb([1, 2])], "must be a map"),
        ([b"muscle", msgpack.packb({"schema": 99, "fields": {}})], "schema 99"),
        ([b"muscle", msgpack.packb({"schema": 1, "fields": 3})], "'fields' must be a map"),
        ([b"muscle", msgpack.packb({"schema": 1, "fields": {}, "t": "x"})], "'t' must be"),
        (
            [
                b"muscle",
                msgpack.packb(
                    {
                        "schema": 1,
                        "fields": {"x": {"dtype": "<f4", "shape": [4], "data": b"\0" * 3}},
                    }
                ),
            ],
            "do not fill shape",
        ),
        (
            [
                b"muscle",
                msgpack.packb(
                    {"schema": 1, "fields": {"x": {"dtype": "|O", "shape": [1], "data": b"\0" * 8}}}
                ),
            ],
            "not allowed",
        ),
    ],
)
def test_malformed_payloads_are_rejected_with_a_clear_reason(parts, complaint) -> None:
    with pytest.raises(PayloadError, match=complaint):
        decode(parts)


def test_object_arrays_cannot_be_sent() -> None:
    with pytest.raises(TypeError, match="dtype object"):
        encode("muscle", {"x": np.array([object()])})


def _connected_pair(topics=()):
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.address, topics)
    time.sleep(0.2)  # slow joiner: let the subscription reach the publisher
    return publisher, subscriber


def test_publisher_binds_loopback_and_subscriber_receives_in_order() -> None:
    publisher, subscriber = _connected_pair(["muscle"])
    try:
        assert publisher.address.startswith("tcp://127.0.0.1:")
        for i in range(5):
            publisher.publish("muscle", {"i": i}, t=float(i), frame=i)
        publisher.publish("status", {"ignored": True})
        frames = [subscriber.receive(1.0) for _ in range(5)]
        assert [m.frame for m in frames] == [0, 1, 2, 3, 4]
        assert subscriber.receive(0.2) is None  # status was not subscribed
    finally:
        subscriber.close()
        publisher.close()


def test_topic_filter_is_exact_not_prefix() -> None:
    publisher, subscriber = _connected_pair(["muscle"])
    try:
        publisher.publish("muscles", {"x": 1})
        publisher.publish("muscle", {"x": 2})
        message = subscriber.receive(1.0)
        assert message is not None and message.fields == {"x": 2}
    finally:
        subscriber.close()
        publisher.close()


def test_subscriber_survives_malformed_messages_and_counts_them() -> None:
    publisher, subscriber = _connected_pair()
    raw = zmq.Context.instance().socket(zmq.PUB)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    subscriber._socket.connect(f"tcp://127.0.0.1:{port}")
    time.sleep(0.2)
    try:
        raw.send_multipart([b"muscle", b"\xc1not msgpack"])
        raw.send_multipart([b"muscle"])
        publisher.publish("muscle", {"ok": True})
        received = []
        deadline = time.monotonic() + 3
        while (subscriber.rejected < 2 or not received) and time.monotonic() < deadline:
            message = subscriber.receive(0.2)  # two sockets: arrival order is not guaranteed
            if message is not None:
                received.append(message)
        assert [m.fields for m in received] == [{"ok": True}]
        assert subscriber.rejected == 2
        assert subscriber.last_error is not None
    finally:
        raw.close()
        subscriber.close()
        publisher.close()


def test_conflating_subscriber_returns_only_the_newest() -> None:
    publisher, subscriber = _connected_pair()
    subscriber.conflate = True
    try:
        for i in range(50):
            publisher.publish("muscle", {"i": i})
        time.sleep(0.2)
        message = subscriber.receive(1.0)
        assert message is not None and message.fields["i"] == 49
    finally:
        subscriber.close()
        publisher.close()


def test_binding_a_busy_address_names_it() -> None:
    first = Publisher("tcp://127.0.0.1:*")
    try:
        with pytest.raises(OSError, match="cannot bind bus at"):
            Publisher(first.address)
    finally:
        first.close()


def test_one_subscriber_listens_to_several_publishers() -> None:
    pipeline, protocol = Publisher("tcp://127.0.0.1:*"), Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber([pipeline.address, protocol.address])
    time.sleep(0.3)
    try:
        pipeline.publish("muscle", {"x": 1})
        protocol.publish("instruction", {"text": "Smile"})
        topics = {subscriber.receive(1.0).topic, subscriber.receive(1.0).topic}
        assert topics == {"muscle", "instruction"}
    finally:
        subscriber.close()
        pipeline.close()
        protocol.close()
