"""Fan-out of bus messages to browser clients with latest-only backpressure.

Each client owns a :class:`LatestSlots`: one slot per topic holding only the newest encoded
message. A slow browser therefore never builds a queue: a newer message replaces the unsent
one and the replacement is counted (``skipped``), which the page shows. Memory per client is
bounded by (number of topics) x (largest message).

Wire format to the browser: JSON text frames ``{"topic", "t", "frame", "fields"}`` with arrays as
lists. Why JSON rather than a binary layout: per frame the payload is small (22 + 22 + 55 + 55 + 6
numbers, ~2-3 kB), ``JSON.parse`` of that takes microseconds, it needs no decoder in the page
and stays readable in the browser's developer tools. The one large object, the head mesh, is
served once as raw float32/uint32 bytes (``/head.bin``), not as JSON. The ``face`` preview's
JPEGs (~20 kB, 5 Hz) travel as base64 text inside its JSON (the server encodes them): a third
more bytes, and the latest-only slot keeps at most one of them per client.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["Hub", "LatestSlots", "message_json", "to_jsonable"]

_DIGITS = 5  # float32 carries ~7 significant digits; 5 decimals is far below any display step


def to_jsonable(value: Any) -> Any:
    """Numpy arrays/scalars to lists/numbers, NaN/inf to None (JSON has no NaN)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            values = value.astype(np.float64)
            with np.errstate(
                all="ignore"
            ):  # rounding 1e308 overflows: keep such values as they are
                rounded = np.where(np.abs(values) < 1e12, np.round(values, _DIGITS), values)
            if np.isfinite(rounded).all():
                return rounded.tolist()
            return np.where(np.isfinite(rounded), rounded, np.array(None, dtype=object)).tolist()
        return value.tolist()
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return None  # raw bytes have no place on the page
    return value


def message_json(
    topic: str, fields: Mapping[str, Any], t: float | None = None, frame: int | None = None
) -> str:
    """One browser message as JSON text."""
    body = {"topic": topic, "t": to_jsonable(t), "frame": frame, "fields": to_jsonable(fields)}
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


class LatestSlots:
    """Newest unsent message per topic for one client; replaced messages are counted."""

    def __init__(self) -> None:
        self._slots: dict[str, str] = {}
        self._ready = asyncio.Event()
        self.skipped = 0
        self.sent = 0

    def offer(self, topic: str, text: str) -> None:
        if topic in self._slots:
            self.skipped += 1
        self._slots[topic] = text
        self._ready.set()

    async def take(self) -> list[str]:
        """Wait until something is pending, then hand over every pending message."""
        await self._ready.wait()
        items = list(self._slots.values())
        self._slots.clear()
        self._ready.clear()
        return items

    @property
    def pending(self) -> int:
        return len(self._slots)

    @property
    def pending_bytes(self) -> int:
        return sum(len(text) for text in self._slots.values())


class Hub:
    """All connected clients plus the newest message per topic (sent to new clients at once)."""

    def __init__(self) -> None:
        self.clients: set[LatestSlots] = set()
        self.latest: dict[str, str] = {}
        self.received: dict[str, int] = {}

    def add(self) -> LatestSlots:
        slots = LatestSlots()
        for topic, text in self.latest.items():
            slots.offer(topic, text)
        self.clients.add(slots)
        return slots

    def remove(self, slots: LatestSlots) -> None:
        self.clients.discard(slots)

    def broadcast(self, topic: str, text: str, *, keep: bool = True) -> None:
        """Offer ``text`` to every client (call on the event loop)."""
        self.received[topic] = self.received.get(topic, 0) + 1
        if keep:
            self.latest[topic] = text
        for slots in self.clients:
            slots.offer(topic, text)

    def pending_bytes(self) -> int:
        return sum(slots.pending_bytes for slots in self.clients)
