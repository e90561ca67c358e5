"""The ZeroMQ bus: schema-1 msgpack payloads over real PUB/SUB sockets on loopback."""

from __future__ import annotations

import functools
import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest
import zmq

from streaming.addresses import DEFAULT_ADDRESS, BusAddressError
from streaming.bus.pubsub import SCHEMA_VERSION, Publisher, Subscriber, decode, encode
from streaming.errors import EiferError, PayloadError

DEFAULT = DEFAULT_ADDRESS


def _with_fields(fields: object, **envelope: object) -> list[bytes]:
    """Raw parts of a message whose ``fields`` (and envelope keys) are exactly as given."""
    payload = {"schema": 1, "t": None, "frame": None, "fields": fields, **envelope}
    return [b"muscle", msgpack.packb(payload, use_bin_type=True)]


def _array(dtype: object, shape: object, data: object = b"") -> dict[str, object]:
    return {"x": {"dtype": dtype, "shape": shape, "data": data}}


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


@pytest.mark.parametrize(
    ("parts", "complaint"),
    [
        # shape products that overflow int64 (old code: ValueError / OverflowError escaped)
        (_with_fields(_array("<f4", [2**32, 2**32])), "too large"),
        (_with_fields(_array("<f4", [2**64 - 1])), "too large"),
        (_with_fields(_array("<f4", [2**63, 2])), "too large"),
        (_with_fields(_array("<f4", [2**20, 2**20])), "do not fill shape"),
        (_with_fields(_array("|u1", [2**32, 2**32, 0])), "too large"),  # 0 bytes, yet
        (_with_fields(_array("<f4", [-1], b"\0" * 4)), "non-negative integers"),
        (_with_fields(_array("<f4", [-2, -2], b"\0" * 16)), "non-negative integers"),
        (_with_fields(_array("<f4", "12", b"\0" * 8)), "shape must be a list"),
        (_with_fields(_array("<f4", [1.5], b"\0" * 4)), "non-negative integers"),
        (_with_fields(_array("<f4", [True], b"\0" * 4)), "non-negative integers"),
        (_with_fields(_array("<f4", [1] * 40, b"\0" * 4)), "at most 32"),
        (_with_fields(_array("<f4", None, b"\0" * 4)), "shape must be a list"),
        (_with_fields(_array("i4,i4", [1], b"\0" * 8)), "not allowed"),
        (_with_fields(_array("(2,)f4", [1], b"\0" * 8)), "not allowed"),
        (_with_fields(_array("U3", [1], b"\0" * 12)), "not allowed"),
        (_with_fields(_array("<c8", [1], b"\0" * 8)), "not allowed"),
        (_with_fields(_array("<i3", [1], b"\0" * 3)), "not allowed"),
        (_with_fields(_array({"names": ["a"], "formats": ["<f4"]}, [1], b"\0" * 4)), "not allowed"),
        (_with_fields(_array(5, [1], b"\0" * 4)), "not allowed"),
        (_with_fields(_array(b"<f4", [1], b"\0" * 4)), "not allowed"),
        (_with_fields(_array("<f4", [1], "abcd")), "data must be bytes"),
        (_with_fields(_array("<f4", [0])["x"]), "not an array"),  # found by the fuzzer
        (_with_fields({b"raw": 1}), "not a string"),
        (_with_fields({"a": {b"raw": 1}}), "not a string"),
        (_with_fields({"a": functools.reduce(lambda x, _: [x], range(40), 1)}), "nested deeper"),
        (_with_fields({}, t=float("nan")), "'t' must be a finite number"),
        (_with_fields({}, t=float("inf")), "'t' must be a finite number"),
        (_with_fields({}, t=True), "'t' must be"),
        (_with_fields({}, frame=True), "'frame' must be an integer"),
        (_with_fields({}, frame=1.5), "'frame' must be an integer"),
        (_with_fields({}, schema=True), "schema True"),
        (_with_fields({}, schema=1.0), "schema 1.0"),
        ([b"muscle", msgpack.packb("just a string")], "must be a map"),
        ([b"muscle", msgpack.packb(None)], "must be a map"),
        ([b"\xff\xfe", msgpack.packb({"schema": 1, "fields": {}})], "not UTF-8"),
        ([b"muscle", b""], "not msgpack"),
        ([b"a", b"b", b"c"], "got 3"),
    ],
)
def test_every_malformed_payload_is_a_named_payload_error(parts, complaint) -> None:
    with pytest.raises(PayloadError, match=complaint):
        decode(parts)


def test_empty_and_zero_sized_arrays_are_valid() -> None:
    message = decode(_with_fields(_array("<f4", [0, 2**40])))
    assert message.fields["x"].shape == (0, 2**40)
    message = decode(_with_fields(_array("|b1", [], b"\1")))
    assert message.fields["x"].shape == () and bool(message.fields["x"])


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


def test_subscriber_counts_overflowing_arrays_and_keeps_receiving() -> None:
    """The message that killed the display's bus thread: shape [2**32, 2**32] with no data."""
    publisher, subscriber = _connected_pair()
    raw = zmq.Context.instance().socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    subscriber._socket.connect(f"tcp://127.0.0.1:{port}")
    time.sleep(0.3)
    try:
        raw.send_multipart(_with_fields(_array("<f4", [2**32, 2**32])))
        raw.send_multipart(_with_fields(_array("<f4", [2**64 - 1])))
        publisher.publish("muscle", {"ok": True})
        received = []
        deadline = time.monotonic() + 5
        while (subscriber.rejected < 2 or not received) and time.monotonic() < deadline:
            message = subscriber.receive(0.2)
            if message is not None:
                received.append(message)
        assert [m.fields for m in received] == [{"ok": True}]
        assert subscriber.rejected == 2
        assert "too large" in subscriber.last_error
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
        with pytest.raises(BusAddressError, match=r"cannot bind bus at .*already in use"):
            Publisher(first.address)
    finally:
        first.close()


@pytest.mark.parametrize(
    "address", ["banana", "localhost-5556", "tcp://127.0.0.1", "tcp://127.0.0.1:99999", ""]
)
def test_malformed_addresses_are_named_bus_address_errors(address: str) -> None:
    for make in (Publisher, Subscriber, lambda a: Subscriber([DEFAULT, a])):
        with pytest.raises(BusAddressError, match="bus address") as caught:
            make(address)
        assert isinstance(caught.value, EiferError)


def test_an_unconnectable_address_is_a_bus_address_error() -> None:
    with pytest.raises(BusAddressError, match=r"cannot connect bus at tcp://\*:5556: Invalid"):
        Subscriber("tcp://*:5556")  # "any interface" is for binding only
    with pytest.raises(BusAddressError, match=r"cannot connect bus at tcp://\*:5556: Invalid"):
        Subscriber(["tcp://127.0.0.1:5556", "tcp://*:5556"])
    with pytest.raises(BusAddressError, match=r"cannot bind bus at tcp://192\.0\.2\.1:5: Cannot"):
        Publisher("tcp://192.0.2.1:5")  # TEST-NET-1: not an address of this machine


def _eifer(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodes.cli", *argv], capture_output=True, text=True, timeout=120
    )


def test_listen_with_a_bad_address_is_one_line() -> None:
    result = _eifer("listen", "--address", "banana", "--seconds", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "eifer listen: error: bus address 'banana' is not valid: give tcp://HOST:PORT "
        "(e.g. tcp://127.0.0.1:5556), ipc://PATH or inproc://NAME"
    ]


def test_a_second_pipeline_on_the_same_bus_port_is_one_line() -> None:
    with Publisher("tcp://127.0.0.1:*") as first:
        result = _eifer("pipeline", "--set", f'output.bus_address="{first.address}"')
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"eifer pipeline: error: cannot bind bus at {first.address}")
    assert "already in use" in lines[0]


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


def _joined(subscriber: Subscriber, publisher: Publisher, deadline: float) -> None:
    """Publish probes until one arrives (ZeroMQ's slow joiner), then drain the rest."""
    while True:
        assert time.monotonic() < deadline, "the subscription never reached the publisher"
        publisher.publish("status", {"probe": True})
        if subscriber.receive(0.1) is not None:
            break
    while subscriber.receive(0.2) is not None:
        pass


@pytest.mark.parametrize("which", [0, 1], ids=["first address", "second address"])
def test_oversized_messages_are_refused_and_counted_on_every_address(which: int) -> None:
    """Issue 18, item 2: MAXMSGSIZE applies to each address; the dropped connection is counted
    and connected again (libzmq never reconnects after a protocol error by itself)."""
    publishers = [Publisher("tcp://127.0.0.1:*"), Publisher("tcp://127.0.0.1:*")]
    subscriber = Subscriber([p.address for p in publishers], max_message_bytes=1 << 20)
    sender = publishers[which]
    deadline = time.monotonic() + 30
    try:
        _joined(subscriber, sender, deadline)
        sender.publish("muscle", {"big": b"\0" * (2 << 20)})  # 2 MiB over a 1 MiB limit
        got = []
        while subscriber.disconnects == 0:  # libzmq reconnects after dropping the connection
            assert time.monotonic() < deadline, "the oversized message's drop was not counted"
            if (message := subscriber.receive(0.1)) is not None:
                got.append(message)
        _joined(subscriber, sender, deadline)  # and the bus works again
        assert not [m for m in got if "big" in m.fields]
        assert subscriber.disconnects >= 1
    finally:
        subscriber.close()
        for publisher in publishers:
            publisher.close()


@pytest.mark.parametrize("which", [0, 1], ids=["first address", "second address"])
def test_the_high_water_marks_bound_the_queue_on_every_address(which: int) -> None:
    """With the subscriber not reading, at most its HWM plus the publisher's and the kernel's
    socket buffers (a few MiB on loopback) are queued: never all 100 one-MiB messages (the
    publisher's SNDHWM, set after bind, used not to apply: libzmq copies it when binding)."""
    publishers = [Publisher("tcp://127.0.0.1:*", hwm=2), Publisher("tcp://127.0.0.1:*", hwm=2)]
    subscriber = Subscriber([p.address for p in publishers], hwm=2, max_message_bytes=4 << 20)
    sender = publishers[which]
    try:
        _joined(subscriber, sender, time.monotonic() + 30)
        payload = np.zeros(1 << 20, np.uint8)
        for k in range(100):
            sender.publish("muscle", {"k": k, "x": payload})
            time.sleep(0.01)  # paced, so a receiver without a limit would keep up
        time.sleep(1.0)
        received = 0
        while subscriber.receive(1.0) is not None:
            received += 1
        assert 1 <= received <= 40, received
    finally:
        subscriber.close()
        for publisher in publishers:
            publisher.close()
