"""Thin typed wrappers over pylsl for numpy chunks.

Frames and EMG always travel as 2-D numpy chunks and inlets pull into preallocated buffers
(``pull_chunk(dest_obj=...)``): a 1280x720 RGB frame takes ~1.5 ms through ``push_chunk`` and
~400 ms through ``push_sample`` (DESIGN.md, measured here). Stream selection is by name, type and
source id, in the spirit of MNE-LSL's ``StreamLSL(name=, stype=, source_id=)``, with errors that
list what *is* visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pylsl.util import LostError as LSLLostError
from pylsl.util import TimeoutError as LSLTimeoutError

from streaming.acquisition.lsl_meta import (
    NUMPY_DTYPES,
    channel_format,
    channel_labels,
    desc_to_dict,
    stream_info,
)
from streaming.errors import StreamFormatError, StreamNotFoundError

__all__ = [
    "ChunkInlet",
    "ChunkOutlet",
    "StreamSelector",
    "channel_format",
    "channel_labels",
    "configure_lsl",
    "desc_to_dict",
    "find_stream",
    "lab_lsl_config",
    "list_streams",
    "stream_info",
    "with_full_desc",
]


_configured = False


def lab_lsl_config() -> Path | None:
    """The lab's own ``lsl_api.cfg``, where liblsl looks for one (``$LSLAPICFG``,
    ``./lsl_api.cfg``, ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``); None: none."""
    candidates = [os.environ.get("LSLAPICFG", ""), "lsl_api.cfg", "~/lsl_api/lsl_api.cfg"]
    for candidate in [*candidates, "/etc/lsl_api/lsl_api.cfg"]:
        if candidate and (path := Path(candidate).expanduser()).is_file():
            return path
    return None


def configure_lsl(resolve_scope: str = "machine") -> None:
    """Set liblsl's configuration before its first use; a no-op when the lab has its own
    ``lsl_api.cfg`` (:func:`lab_lsl_config`: its ``KnownPeers``, ``SessionID``, ports and scope
    hold, as for LabRecorder on the same computer) or ``LSLAPICFG`` is set.

    ``machine`` keeps discovery on this computer (tests, single-PC labs); use ``site`` or
    ``link`` to see amplifiers on other machines of the lab network.
    """
    global _configured
    if _configured or os.environ.get("LSLAPICFG") or lab_lsl_config() is not None:
        return
    if resolve_scope not in {"machine", "link", "site", "organization", "global"}:
        raise ValueError(f"unknown LSL resolve scope {resolve_scope!r}")
    import pylsl

    pylsl.set_config_content(f"[multicast]\nResolveScope = {resolve_scope}\n[log]\nlevel = -2\n")
    _configured = True


@dataclass(frozen=True)
class StreamSelector:
    """Which stream to use: every field that is set must match exactly."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None

    def matches(self, info: Any) -> bool:
        return (
            (self.name is None or info.name() == self.name)
            and (self.type is None or info.type() == self.type)
            and (self.source_id is None or info.source_id() == self.source_id)
        )

    def predicate(self) -> str:
        """The XPath predicate liblsl resolves by (``name='EMG' and type='EMG'``)."""
        for value in vars(self).values():
            if value is not None and "'" in value:
                raise ValueError(f"stream selector values cannot contain quotes: {value!r}")
        return " and ".join(f"{k}='{v}'" for k, v in vars(self).items() if v is not None)

    def __str__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in vars(self).items() if v is not None]
        return ", ".join(parts) or "any stream"


def _describe(info: Any) -> str:
    return (
        f"{info.name()!r} (type {info.type()!r}, {info.channel_count()} ch, "
        f"{info.nominal_srate():g} Hz, source_id {info.source_id()!r})"
    )


def list_streams(timeout_s: float = 1.0) -> list[Any]:
    """Every stream visible from this machine within ``timeout_s``."""
    import pylsl

    return list(pylsl.resolve_streams(timeout_s))


def find_stream(selector: StreamSelector, timeout_s: float = 5.0) -> Any:
    """The one stream matching ``selector`` (full info incl. ``desc``), waiting up to ``timeout_s``.

    Raises :class:`StreamNotFoundError` listing the visible streams, or
    :class:`StreamFormatError` when several streams match (set a source id to choose).
    """
    import pylsl

    predicate = selector.predicate()
    # the first match returns as soon as it answers; a short second look catches duplicates
    matches = list(pylsl.resolve_bypred(predicate, 1, timeout_s)) if predicate else []
    if matches:
        matches += list(pylsl.resolve_bypred(predicate, 2, 1.0))
    visible = [] if matches else list(pylsl.resolve_streams(0.5))
    if not predicate:
        matches = visible
    unique = {info.uid(): info for info in matches}
    if not unique:
        seen = "; ".join(_describe(i) for i in visible) or "none"
        raise StreamNotFoundError(
            f"no LSL stream with {selector} appeared within {timeout_s:g} s. Visible: {seen}. "
            "Is the acquisition node running, and on a network this machine can see?"
        )
    if len(unique) > 1:
        listed = "; ".join(_describe(i) for i in unique.values())
        raise StreamFormatError(
            f"{len(unique)} streams match {selector}: {listed}. Add a source_id to choose one."
        )
    return with_full_desc(next(iter(unique.values())), max(2.0, timeout_s))


def with_full_desc(resolved: Any, timeout_s: float = 2.0) -> Any:
    """A resolved stream info with its ``desc`` filled in (resolving returns it empty).

    An inlet's full info cannot open a new inlet (liblsl 1.18), so the full desc is copied into
    the resolved info, which keeps its connection details.
    """
    import pylsl

    inlet = pylsl.StreamInlet(resolved, max_buflen=1, recover=False)
    try:
        full = inlet.info(timeout=timeout_s)
    except (LSLTimeoutError, LSLLostError):
        raise StreamNotFoundError(
            f"stream {resolved.name()!r} vanished while reading its metadata"
        ) from None
    finally:
        inlet.close_stream()
        del inlet
    child = full.desc().first_child()
    while not child.empty():
        resolved.desc().append_copy(child)
        child = child.next_sibling()
    return resolved


class ChunkOutlet:
    """An LSL outlet that pushes numpy chunks ``(n_samples, n_channels)``."""

    def __init__(self, info: Any, *, chunk_size: int = 0, max_buffered_s: float = 360.0) -> None:
        import pylsl

        self.info = info
        self.channel_count: int = info.channel_count()
        self.dtype = _format_dtype(info)
        max_buffered = max(1, int(np.ceil(max_buffered_s)))
        self._outlet: Any = pylsl.StreamOutlet(info, chunk_size, max_buffered)

    def _check(self, chunk: Any) -> Any:
        if self.dtype is None:
            if not all(len(row) == self.channel_count for row in chunk):
                raise StreamFormatError(f"string chunk rows must have {self.channel_count} values")
            return [[str(v) for v in row] for row in chunk]
        array = np.asarray(chunk)
        if array.ndim != 2 or array.shape[1] != self.channel_count:
            raise StreamFormatError(
                f"chunk shape {array.shape} does not fit stream {self.info.name()!r} "
                f"with {self.channel_count} channels; expected (n_samples, {self.channel_count})"
            )
        return np.ascontiguousarray(array, dtype=self.dtype)

    def push(self, chunk: Any, timestamp: float | None = None) -> None:
        """Push a chunk; ``timestamp`` is the LSL time of its *last* sample (default: now)."""
        data = self._check(chunk)
        if len(data) == 0:
            return
        if timestamp is None:
            self._outlet.push_chunk(data)
        else:
            self._outlet.push_chunk(data, float(timestamp))

    def push_stamped(self, chunk: Any, timestamps: np.ndarray) -> None:
        """Push a chunk with one LSL time per sample."""
        data = self._check(chunk)
        stamps = np.asarray(timestamps, dtype=np.float64).ravel()
        if len(stamps) != len(data):
            raise StreamFormatError(f"{len(stamps)} timestamps for {len(data)} samples")
        if len(data):
            self._outlet.push_chunk(data, stamps.tolist())

    def have_consumers(self) -> bool:
        return bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout_s: float) -> bool:
        return bool(self._outlet.wait_for_consumers(timeout_s))

    def close(self) -> None:
        if self._outlet is not None:
            self._outlet = None  # liblsl destroys the outlet when the handle is released

    def __enter__(self) -> ChunkOutlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _format_dtype(info: Any) -> np.dtype | None:
    return NUMPY_DTYPES[channel_format(info)]


class ChunkInlet:
    """An LSL inlet pulling numpy chunks into a preallocated buffer.

    ``clock_sync`` applies liblsl's clock correction (the consumer's clock), ``dejitter`` its
    RLS timestamp smoothing (slow to converge: ~90 s half-time; :mod:`streaming.acquisition.clock`
    has a faster one for the pipeline). Recorders keep raw stamps: ``clock_sync=False``.

    Parameters
    ----------
    info : pylsl.StreamInfo
        The resolved stream.
    max_buflen_s : float
        Seconds liblsl buffers before dropping the oldest samples (rounded up to whole seconds).
    clock_sync : bool
        Apply liblsl's clock correction (stamps in this machine's LSL clock).
    dejitter : bool
        Apply liblsl's timestamp smoothing.
    recover : bool
        Let liblsl reconnect to a stream with the same source id after it was lost.
    max_chunk : int
        Most samples one pull returns (the size of the preallocated buffer).
    """

    def __init__(
        self,
        info: Any,
        *,
        max_buflen_s: float = 10.0,
        clock_sync: bool = True,
        dejitter: bool = False,
        recover: bool = True,
        max_chunk: int = 4096,
    ) -> None:
        import pylsl

        self.info = info
        self.name: str = info.name()
        self.channel_count: int = info.channel_count()
        self.rate_hz: float = info.nominal_srate()
        self.dtype = _format_dtype(info)
        flags = (pylsl.proc_clocksync if clock_sync else 0) | (
            pylsl.proc_dejitter if dejitter else 0
        )
        self._inlet: Any = pylsl.StreamInlet(
            info,
            max_buflen=max(1, int(np.ceil(max_buflen_s))),
            recover=recover,
            processing_flags=flags,
        )
        self._max_chunk = max_chunk
        self._clock_sync = clock_sync
        if self.dtype is not None:
            self._buffer = np.empty((max_chunk, self.channel_count), dtype=self.dtype)
        self._stamps = np.empty(max_chunk, dtype=np.float64)

    def open(self, timeout_s: float = 5.0) -> None:
        """Subscribe now (otherwise the first pull does), so no early sample is missed."""

        try:
            self._inlet.open_stream(timeout=timeout_s)
            if self._clock_sync:
                # liblsl's first clock-offset estimate takes ~0.5 s; done here, the first pull
                # does not block and the early samples do not arrive as one burst
                self._inlet.time_correction(timeout=timeout_s)
        except (LSLTimeoutError, LSLLostError):
            raise StreamNotFoundError(f"could not open stream {self.name!r}") from None

    def pull(self, timeout_s: float = 0.0) -> tuple[Any, np.ndarray]:
        """Every sample available now (waiting up to ``timeout_s`` for the first).

        Returns ``(data, timestamps)``: data ``(n, n_channels)`` in the stream's dtype (a list of
        string rows for string streams), timestamps ``(n,)`` in seconds.
        """

        wait_first = 1 if timeout_s > 0 else None  # return as soon as data is there
        try:
            if self.dtype is None:
                rows, stamps = self._inlet.pull_chunk(
                    timeout=timeout_s, max_samples=self._max_chunk, min_samples=wait_first
                )
                return rows, np.asarray(stamps, dtype=np.float64)
            _, stamps = self._inlet.pull_chunk(
                timeout=timeout_s,
                max_samples=self._max_chunk,
                dest_obj=self._buffer,
                min_samples=wait_first,
                as_numpy=True,
            )
        except LSLLostError:
            raise StreamNotFoundError(f"stream {self.name!r} was lost") from None
        n = len(stamps)
        return self._buffer[:n].copy(), np.asarray(stamps, dtype=np.float64)

    def samples_available(self) -> int:
        return int(self._inlet.samples_available())

    def time_correction(self, timeout_s: float = 1.0) -> float:
        """Seconds to add to this stream's stamps to express them in the local clock."""

        try:
            return float(self._inlet.time_correction(timeout=timeout_s))
        except (LSLTimeoutError, LSLLostError):
            raise StreamNotFoundError(
                f"no clock correction from stream {self.name!r} within {timeout_s:g} s"
            ) from None

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None

    def __enter__(self) -> ChunkInlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
