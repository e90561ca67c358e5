"""The ZeroMQ bus: PUB/SUB, multipart ``[topic, payload]``, msgpack payloads, no pickle.

Payload (schema 1, DESIGN.md): a msgpack map ``{"schema": 1, "t": <LSL time of the frame>,
"frame": <index>, "fields": {...}}``. Numpy arrays travel as ``{"dtype", "shape", "data"}`` maps
(the zero-copy pattern of pyzmq's serialisation examples, through msgpack's ``ext``-free
encoding so that any msgpack client, in any language, can read them). Subscribers never crash on
a bad message: they count and log it (:attr:`Subscriber.rejected`). A subscriber's limits (largest
message, receive high-water mark) apply to every address it connects to; a connection libzmq
drops (a message over the limit, or a publisher that stopped) is counted and logged
(:attr:`Subscriber.disconnects`): messages queued on it are lost.

Optionally both ends use ZeroMQ's CURVE (:mod:`streaming.bus.curve`): the publisher admits only
subscribers whose public keys it holds, and what travels is encrypted. A subscriber whose
handshake fails (no keys for a CURVE publisher, a key it does not know, the wrong server key)
receives nothing: each failure is counted (:attr:`Subscriber.handshake_failures`), logged with
its likely cause (at most every 10 s per publisher) and retried every few seconds. A publisher
bound beyond loopback without CURVE says so in one warning line. Without CURVE the messages and
the behaviour are as above, whatever the address.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq
from zmq.utils import monitor as zmq_monitor

from streaming.addresses import (
    DEFAULT_ADDRESS,
    BusAddressError,
    binds_beyond_loopback,
    check_address,
)
from streaming.bus.curve import CurveClient, CurveServer, plain
from streaming.errors import PayloadError

__all__ = [
    "SCHEMA_VERSION",
    "TOPICS",
    "Message",
    "Publisher",
    "Subscriber",
    "decode",
    "encode",
]

SCHEMA_VERSION = 1
TOPICS = ("expression", "muscle", "status", "instruction", "face", "quality")
_ARRAY_KEYS = frozenset({"dtype", "shape", "data"})
# Plain numeric dtypes only, written as numpy's ``dtype.str`` (``<f4``, ``|u1``, ``|b1``): object,
# void or structured dtypes could smuggle arbitrary Python objects or odd layouts.
_DTYPE_PATTERN = re.compile(r"[<>|=]?[biuf][1-9][0-9]?")
_MAX_DIMS = 32  # numpy's own limit is 64; bus arrays are 1-D or 2-D
# numpy needs every shape's product (zeros left out) to fit its index type
_MAX_ARRAY_BYTES = np.iinfo(np.intp).max
_MAX_DEPTH = 32  # nesting of maps/lists in ``fields``; bus messages use 3
HANDSHAKE_RETRY_S = 5.0  # a refused subscriber tries again this often (a key may be added)
_HANDSHAKE_LOG_S = 10.0  # ... and says so at most this often per publisher
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

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
        if value.dtype.kind not in "biuf":
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


def _unpack_value(value: Any, where: str, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise PayloadError(f"field {where}: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        if value.keys() == _ARRAY_KEYS:
            return _unpack_array(value, where)
        for key in value:
            if not isinstance(key, str):
                raise PayloadError(f"field {where}: map key {key!r} is not a string")
        return {k: _unpack_value(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


def _unpack_array(spec: dict[str, Any], where: str) -> np.ndarray:
    """An array map ``{dtype, shape, data}``, checked before numpy sees it: sizes are computed
    with Python integers, so shapes like ``[2**32, 2**32]`` or ``[2**64]`` cannot overflow."""
    dtype_text, shape, data = spec["dtype"], spec["shape"], spec["data"]
    if not isinstance(dtype_text, str) or not _DTYPE_PATTERN.fullmatch(dtype_text):
        raise PayloadError(
            f"field {where}: array dtype {dtype_text!r} is not allowed (plain numeric dtypes "
            "such as '<f4', '<i8', '|u1', '|b1')"
        )
    try:
        dtype = np.dtype(dtype_text)
    except TypeError:
        raise PayloadError(f"field {where}: array dtype {dtype_text!r} is not allowed") from None
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS:
        raise PayloadError(
            f"field {where}: array shape must be a list of at most {_MAX_DIMS} sizes, got "
            f"{str(shape)[:60]}"
        )
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise PayloadError(
            f"field {where}: array shape {str(shape)[:60]} must hold non-negative integers"
        )
    if math.prod(n for n in shape if n) * dtype.itemsize > _MAX_ARRAY_BYTES:
        raise PayloadError(f"field {where}: array shape {str(shape)[:60]} is too large")
    if not isinstance(data, bytes):
        raise PayloadError(f"field {where}: array data must be bytes, got {type(data).__name__}")
    expected = math.prod(shape) * dtype.itemsize  # exact: Python integers never overflow
    if expected != len(data):
        raise PayloadError(
            f"field {where}: {len(data)} bytes do not fill shape {str(shape)[:60]} of {dtype}"
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
    """Decode ``[topic, payload]``; :class:`PayloadError` says exactly what is malformed.

    Only the envelope and the array maps are checked here; whether a topic's fields follow the
    contract is :func:`streaming.bus.schema.validate`'s job.
    """
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
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise PayloadError(
            f"topic {topic!r}: schema {schema!r} is not supported (this reader knows "
            f"{SCHEMA_VERSION})"
        )
    fields = payload.get("fields")
    if not isinstance(fields, dict):
        raise PayloadError(f"topic {topic!r}: 'fields' must be a map")
    t, frame = payload.get("t"), payload.get("frame")
    if t is not None and (
        isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t)
    ):
        raise PayloadError(f"topic {topic!r}: 't' must be a finite number or nil, got {t!r}")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int)):
        raise PayloadError(f"topic {topic!r}: 'frame' must be an integer or nil, got {frame!r}")
    if fields.keys() == _ARRAY_KEYS:
        raise PayloadError(f"topic {topic!r}: 'fields' must be a map of fields, not an array")
    return Message(
        topic=topic,
        fields=_unpack_value(fields, topic),
        t=None if t is None else float(t),
        frame=frame,
        schema=schema,
    )


def _open(
    kind: int,
    addresses: Sequence[str],
    *,
    bind: bool,
    options: Mapping[int, int] | None = None,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
    setup: Any = None,
) -> zmq.Socket[bytes]:
    """A socket bound or connected to every address, ``options`` set first (libzmq applies
    limits such as ``MAXMSGSIZE`` and ``RCVHWM`` only to connections made after they are set)
    and ``setup(socket, address)`` called before each bind or connect (CURVE keys);
    :class:`BusAddressError` names the address that failed."""
    for address in addresses:
        check_address(address)
    socket: zmq.Socket[bytes] = (context or zmq.Context.instance()).socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    for option, value in (options or {}).items():
        socket.setsockopt(option, value)
    try:
        for address in addresses:
            if setup is not None:
                setup(socket, address)
            if bind:
                socket.bind(address)
            else:
                socket.connect(address)
    except zmq.ZMQError as exc:
        socket.close()
        hint = ""
        if exc.errno == zmq.EADDRINUSE:
            hint = " (another pipeline or node publishes there: stop it or choose another port)"
        raise BusAddressError(
            f"cannot {'bind' if bind else 'connect'} bus at {address}: {exc.strerror}{hint}"
        ) from None
    return socket


class Publisher:
    """A PUB socket, bound to loopback by default (:data:`~streaming.addresses.DEFAULT_ADDRESS`).

    ``address`` may end in ``:*`` to bind a free port; :attr:`address` then holds the real one.
    A malformed or busy address raises :class:`BusAddressError` (one line in the CLI).

    Parameters
    ----------
    address : str
        ZeroMQ endpoint to bind (or connect to, with ``bind=False``).
    bind : bool
        Bind (the usual publisher) or connect (to a subscriber that binds).
    hwm : int
        Send high-water mark: messages queued per subscriber before ZeroMQ drops new ones.
    curve : CurveServer or None
        CURVE keys and the subscribers let in (bind only); None: unencrypted, anyone may read.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        bind: bool = True,
        hwm: int = 1000,
        curve: CurveServer | None = None,
    ):
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._auth: Any = None
        if curve is not None:
            if not bind:
                raise BusAddressError(
                    f"bus at {address}: CURVE needs the publisher to bind (it is the server)"
                )
            # a ZAP handler serves one context: a CURVE publisher has its own
            self._context = zmq.Context()
            self._auth = curve.authenticator(self._context)
        try:
            self._socket = _open(
                zmq.PUB,
                [address],
                bind=bind,
                options={zmq.SNDHWM: hwm},
                context=self._context,
                setup=None if curve is None else lambda socket, _address: curve.apply(socket),
            )
        except BaseException:
            self._close_context()
            raise
        self.address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT) if bind else address
        self.curve = curve is not None
        if bind and curve is None and binds_beyond_loopback(self.address):
            log.warning(
                "bus: publishing on %s, beyond loopback, without CURVE: anyone who reaches "
                "this port reads the participant's data (see `eifer keys`)",
                self.address,
            )

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
        self._close_context()

    def _close_context(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """A SUB socket for some topics (all when empty), connected to one or more publishers.

    Bad messages are counted (:attr:`rejected`), their reason kept (:attr:`last_error`) and
    logged (at most once a second, with the count since), never raised: one malformed message
    must not stop a consumer. ``conflate`` keeps only the newest message (for views that only
    need the latest state; it applies to single-part messages in libzmq, so here it is emulated
    by draining). ``max_message_bytes`` bounds what one message may cost in memory: libzmq
    drops the connection of a peer that sends more (it reconnects); each dropped connection is
    counted (:attr:`disconnects`) and logged, as the message and those queued behind it are lost.

    Parameters
    ----------
    address : str | sequence of str
        One or more publisher endpoints to connect to.
    topics : sequence of str
        Topics to receive, matched exactly (not by ZeroMQ's prefix); empty: all.
    conflate : bool
        Keep only the newest message.
    hwm : int
        Receive high-water mark: messages queued before ZeroMQ drops new ones.
    max_message_bytes : int
        Largest message accepted.
    curve : CurveClient, mapping of address to CurveClient, or None
        CURVE keys for every address, or per address (addresses not named: unencrypted).
    """

    def __init__(
        self,
        address: str | Sequence[str] = DEFAULT_ADDRESS,
        topics: Sequence[str] = (),
        *,
        conflate: bool = False,
        hwm: int = 1000,
        max_message_bytes: int = 16 << 20,
        curve: CurveClient | Mapping[str, CurveClient | None] | None = None,
    ) -> None:
        addresses = [address] if isinstance(address, str) else list(address)
        if not addresses:
            raise BusAddressError("no bus address to subscribe to")
        if isinstance(curve, CurveClient):
            self._curve: dict[str, CurveClient | None] = dict.fromkeys(addresses, curve)
        else:
            self._curve = {a: (curve or {}).get(a) for a in addresses}
        limits: dict[int, int] = {zmq.RCVHWM: hwm, zmq.MAXMSGSIZE: max_message_bytes}
        # one socket listens to several publishers, each connection under the same limits
        self._socket = _open(zmq.SUB, addresses, bind=False, options=limits, setup=self._keys)
        self._monitor: zmq.Socket[bytes] = self._socket.get_monitor_socket(
            zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED
        )
        for topic in topics or ("",):
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._addresses = frozenset(addresses)
        self._exact = frozenset(topics)
        self.conflate = conflate
        self.address = address
        self.rejected = 0
        self.disconnects = 0
        self.handshake_failures = 0
        self.last_error: str | None = None
        self._logged_at = -math.inf
        self._unlogged = 0
        self._failed: dict[str, float] = {}  # endpoint -> when its last handshake failed
        self._handshake_logged: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}  # endpoint -> when to connect again

    def _keys(self, socket: zmq.Socket[bytes], address: str) -> None:
        """This address's CURVE keys (or none) for the connect that follows."""
        keys = self._curve.get(address)
        if keys is None:
            plain(socket)
        else:
            keys.apply(socket)

    def _connect_again(self, endpoint: str) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self._socket.disconnect(endpoint)
        self._keys(self._socket, endpoint)
        self._socket.connect(endpoint)

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self.last_error = reason
        now = time.monotonic()
        if now - self._logged_at >= 1.0:  # a flood of bad messages must not flood the log
            more = f" (+{self._unlogged} more rejected since)" if self._unlogged else ""
            log.warning("rejected bus message: %s%s", reason, more)
            self._logged_at, self._unlogged = now, 0
        else:
            self._unlogged += 1

    def _count_disconnects(self) -> None:
        """Count each dropped connection, and connect again: libzmq reconnects after a lost
        publisher, but never after a protocol error such as a message over the size limit.
        A failed handshake is no dropped connection (nothing was received): it is counted
        apart and retried after :data:`HANDSHAKE_RETRY_S`."""
        now = time.monotonic()
        for endpoint, when in list(self._retry_at.items()):
            if now >= when:
                del self._retry_at[endpoint]
                self._connect_again(endpoint)
        while self._monitor.poll(0):
            event = zmq_monitor.recv_monitor_message(self._monitor)
            endpoint = event["endpoint"].decode(errors="replace")
            if event["event"] & _HANDSHAKE_FAILED:
                self._handshake_failed(endpoint, event["event"], now)
                continue
            if event["event"] != zmq.EVENT_DISCONNECTED:
                continue
            if now - self._failed.get(endpoint, -math.inf) < 1.0:
                continue  # the end of a failed handshake: retried by _handshake_failed
            self.disconnects += 1
            log.warning(
                "bus connection to %s dropped (a message over %d bytes, or the publisher "
                "stopped): messages queued on it are lost (%d dropped so far); reconnecting",
                endpoint,
                self._socket.getsockopt(zmq.MAXMSGSIZE),
                self.disconnects,
            )
            if endpoint in self._addresses:
                self._connect_again(endpoint)

    def _handshake_failed(self, endpoint: str, kind: int, now: float) -> None:
        self.handshake_failures += 1
        self._failed[endpoint] = now
        if endpoint in self._addresses:
            self._retry_at.setdefault(endpoint, now + HANDSHAKE_RETRY_S)
        if now - self._handshake_logged.get(endpoint, -math.inf) < _HANDSHAKE_LOG_S:
            return
        self._handshake_logged[endpoint] = now
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            cause = (
                "the publisher refused this subscriber's key: add its NAME.key to the "
                "publisher's clients folder and restart the publisher"
            )
        elif self._curve.get(endpoint) is None:
            cause = (
                "the publisher may require CURVE: set this subscriber's server_key and secret_key"
            )
        else:
            cause = "server_key is not this publisher's public key, or it does not use CURVE"
        log.warning(
            "bus: handshake with %s failed (%d so far), nothing is received from it: %s",
            endpoint,
            self.handshake_failures,
            cause,
        )

    def _next(self, timeout_s: float) -> Message | None:
        self._count_disconnects()
        if not self._socket.poll(int(max(0.0, timeout_s) * 1000)):
            return None
        parts = self._socket.recv_multipart()
        try:
            message = decode(parts)
        except PayloadError as exc:
            self._reject(str(exc))
            return None
        except Exception as exc:  # a decoder bug must cost one message, not the consumer
            self._reject(f"undecodable message ({type(exc).__name__}: {exc})")
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
        if not self._socket.closed:
            self._socket.disable_monitor()
        self._monitor.close()
        self._socket.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
