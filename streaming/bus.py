"""The ZeroMQ bus: PUB/SUB, multipart ``[topic, payload]``, msgpack payloads, no pickle.

Payload (schema 1, DESIGN.md): a msgpack map ``{"schema": 1, "t": <LSL time of the frame>,
"frame": <index>, "fields": {...}}``. Numpy arrays travel as ``{"dtype", "shape", "data"}`` maps
(the zero-copy pattern of pyzmq's serialisation examples, through msgpack's ``ext``-free
encoding so that any msgpack client, in any language, can read them). Subscribers never crash on
a bad message: they count and log it (:attr:`Subscriber.rejected`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from streaming.errors import PayloadError

__all__ = [
    "DEFAULT_ADDRESS",
    "SCHEMA_VERSION",
    "TOPICS",
    "Message",
    "Publisher",
    "Subscriber",
    "decode",
    "encode",
]

SCHEMA_VERSION = 1
DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"
TOPICS = ("expression", "muscle", "status", "instruction")
_ARRAY_KEYS = frozenset({"dtype", "shape", "data"})
# Plain numeric dtypes only: object/void dtypes could smuggle arbitrary Python objects.
_ALLOWED_KINDS = frozenset("biuf")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One decoded bus message."""

    topic: str
    fields: dict[str, Any]
    t: float | None
    frame: int | None
    schema: int = SCHEMA_VERSION


def _pack_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"cannot send arrays of dtype {value.dtype} on the bus")
        array = np.ascontiguousarray(value)
        return {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _pack_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_pack_value(v) for v in value]
    return value


def _unpack_value(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if value.keys() == _ARRAY_KEYS:
            return _unpack_array(value, where)
        return {k: _unpack_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _unpack_array(spec: dict[str, Any], where: str) -> np.ndarray:
    try:
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(n) for n in spec["shape"])
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"field {where}: bad array dtype/shape ({exc})") from None
    if dtype.kind not in _ALLOWED_KINDS:
        raise PayloadError(f"field {where}: array dtype {dtype} is not allowed")
    data = spec["data"]
    if not isinstance(data, bytes):
        raise PayloadError(f"field {where}: array data must be bytes, got {type(data).__name__}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if any(n < 0 for n in shape) or expected != len(data):
        raise PayloadError(
            f"field {where}: {len(data)} bytes do not fill shape {list(shape)} of {dtype}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def encode(
    topic: str, fields: Mapping[str, Any], *, t: float | None = None, frame: int | None = None
) -> list[bytes]:
    """Multipart frames ``[topic, payload]`` for one message."""
    payload = {
        "schema": SCHEMA_VERSION,
        "t": None if t is None else float(t),
        "frame": None if frame is None else int(frame),
        "fields": _pack_value(dict(fields)),
    }
    return [topic.encode(), msgpack.packb(payload, use_bin_type=True)]


def decode(parts: Sequence[bytes]) -> Message:
    """Decode ``[topic, payload]``; :class:`PayloadError` says exactly what is malformed."""
    if len(parts) != 2:
        raise PayloadError(f"expected 2 message parts [topic, payload], got {len(parts)}")
    raw_topic, raw_payload = parts
    try:
        topic = bytes(raw_topic).decode()
    except UnicodeDecodeError:
        raise PayloadError("topic is not UTF-8") from None
    try:
        payload = msgpack.unpackb(bytes(raw_payload), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise PayloadError(f"topic {topic!r}: payload is not msgpack ({exc})") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"topic {topic!r}: payload must be a map, got {type(payload).__name__}")
    schema = payload.get("schema")
    if schema != SCHEMA_VERSION:
        raise PayloadError(
            f"topic {topic!r}: schema {schema!r} is not supported (this reader knows "
            f"{SCHEMA_VERSION})"
        )
    fields = payload.get("fields")
    if not isinstance(fields, dict):
        raise PayloadError(f"topic {topic!r}: 'fields' must be a map")
    t, frame = payload.get("t"), payload.get("frame")
    if t is not None and not isinstance(t, int | float):
        raise PayloadError(f"topic {topic!r}: 't' must be a number, got {t!r}")
    if frame is not None and not isinstance(frame, int):
        raise PayloadError(f"topic {topic!r}: 'frame' must be an integer, got {frame!r}")
    return Message(
        topic=topic,
        fields=_unpack_value(fields, topic),
        t=None if t is None else float(t),
        frame=frame,
        schema=schema,
    )


class Publisher:
    """A PUB socket, bound to loopback by default (``tcp://127.0.0.1:5556``).

    ``address`` may end in ``:*`` to bind a free port; :attr:`address` then holds the real one.
    """

    def __init__(self, address: str = DEFAULT_ADDRESS, *, bind: bool = True, hwm: int = 1000):
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        try:
            if bind:
                self._socket.bind(address)
            else:
                self._socket.connect(address)
        except zmq.ZMQError as exc:
            self._socket.close()
            raise OSError(
                f"cannot {'bind' if bind else 'connect'} bus at {address}: {exc}"
            ) from None
        self.address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT) if bind else address

    def publish(
        self,
        topic: str,
        fields: Mapping[str, Any],
        *,
        t: float | None = None,
        frame: int | None = None,
    ) -> None:
        self._socket.send_multipart(encode(topic, fields, t=t, frame=frame), copy=False)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """A SUB socket for some topics (all when empty), connected to one or more publishers.

    Bad messages are counted, never raised.

    ``conflate`` keeps only the newest message (for views that only need the latest state;
    it applies to single-part messages in libzmq, so here it is emulated by draining).
    """

    def __init__(
        self,
        address: str | Sequence[str] = DEFAULT_ADDRESS,
        topics: Sequence[str] = (),
        *,
        conflate: bool = False,
        hwm: int = 1000,
    ) -> None:
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        addresses = [address] if isinstance(address, str) else list(address)
        for each in addresses:  # one socket can listen to several publishers (pipeline, protocol)
            self._socket.connect(each)
        for topic in topics or ("",):
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._exact = frozenset(topics)
        self.conflate = conflate
        self.address = address
        self.rejected = 0
        self.last_error: str | None = None

    def _next(self, timeout_s: float) -> Message | None:
        if not self._socket.poll(int(max(0.0, timeout_s) * 1000)):
            return None
        parts = self._socket.recv_multipart()
        try:
            message = decode(parts)
        except PayloadError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            log.warning("rejected bus message: %s", exc)
            return None
        if self._exact and message.topic not in self._exact:
            return None  # SUBSCRIBE matches prefixes; "muscle" must not match "muscles"
        return message

    def receive(self, timeout_s: float) -> Message | None:
        """The next (or, with ``conflate``, the newest) message, or None after ``timeout_s``."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        message = self._next(timeout_s)
        while message is None and (remaining := deadline - time.monotonic()) > 0:
            message = self._next(remaining)  # a rejected or foreign message is not the answer
        if self.conflate and message is not None:
            while (newer := self._next(0.0)) is not None or self._socket.poll(0):
                if newer is not None:
                    message = newer
        return message

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
