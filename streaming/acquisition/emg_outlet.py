"""The output side of the ``EMG`` contract stream (DESIGN.md), shared by simulator and bridge.

Both sources append a ``counter`` channel after the electrode channels (as TMSi/g.tec amplifiers
offer): the sample index modulo :data:`~streaming.acquisition.clock.COUNTER_MODULUS` (2**24, exact
in float32, wraps every 68 min at 4096 Hz), so consumers detect gaps. Its LSL channel type is
``misc``, which MNE (and MNE-LSL's ``StreamLSL``) treat as non-data: it never enters filters or
plots. Consumers (``streaming.pipeline.emg_feed``) find it by its label, ``counter``.

Names follow the stream's name: an empty ``source_id`` becomes
``eifer-emg-<source>-<name>-<host>`` and an empty ``truth_name`` ``<name>-truth``, so two
simulators started with different ``--name`` publish distinct streams.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field

from streaming.acquisition.clock import COUNTER_MODULUS
from streaming.config import Config

__all__ = [
    "COUNTER_LABEL",
    "COUNTER_TYPE",
    "OutputConfig",
    "StatusLine",
    "StopEvent",
    "TimingConfig",
    "contract_channels",
    "counter_column",
    "counter_desc",
]

log = logging.getLogger("eifer.node.emg")

COUNTER_LABEL = "counter"
COUNTER_TYPE = "misc"  # an MNE channel type outside the data types: not filtered, not plotted


class StopEvent(Protocol):
    """What a streaming loop polls to end (a ``threading.Event``, a multiprocessing one...)."""

    def is_set(self) -> bool: ...


class OutputConfig(Config):
    """The published ``EMG`` stream (and the simulator's ``EMG-truth``)."""

    name: str = "EMG"
    type: str = "EMG"
    source_id: str = ""  # "" -> eifer-emg-<source>-<name>-<host>
    chunk_samples: int = Field(32, ge=1, le=4096)
    counter: bool = True
    truth: bool = True  # simulator only: publish the truth stream
    truth_name: str = ""  # "" -> <name>-truth
    truth_type: str = "EMGTruth"
    max_buffered_s: float = Field(60.0, gt=0)

    def stream_source_id(self, source: str) -> str:
        """``source_id``, or one derived from the source kind, the stream name and the host."""
        return self.source_id or f"eifer-emg-{source}-{self.name}-{socket.gethostname()}"

    @property
    def truth_stream_name(self) -> str:
        return self.truth_name or f"{self.name}-truth"


class TimingConfig(Config):
    """Clock emulation (simulator) and status reporting."""

    start_delay_s: float = Field(0.5, ge=0)  # t0 = now + this, so consumers can connect first
    clock_offset_s: float = 0.0  # stamps = true time + offset (an amplifier on another clock)
    jitter_s: float = Field(0.0, ge=0)  # chunk-stamp jitter: uniform +/- or gaussian sd
    jitter: Literal["uniform", "gaussian"] = "uniform"
    status_interval_s: float = Field(5.0, gt=0)


def contract_channels(
    output: OutputConfig, labels: list[str]
) -> tuple[list[str], list[str], list[str]]:
    """``(labels, units, types)`` of the published channels: electrodes, then the counter."""
    units = ["microvolts"] * len(labels)
    types = ["EMG"] * len(labels)
    if output.counter:
        return [*labels, COUNTER_LABEL], [*units, "samples"], [*types, COUNTER_TYPE]
    return list(labels), units, types


def counter_desc(output: OutputConfig) -> dict[str, Any]:
    """``desc/counter`` (label, modulo) when the counter channel is on, else nothing."""
    if not output.counter:
        return {}
    return {"counter": {"label": COUNTER_LABEL, "modulo": COUNTER_MODULUS}}


def counter_column(sample_index: np.ndarray) -> np.ndarray:
    """The counter channel's values, ``(n, 1)`` float32, for absolute sample indices."""
    return (np.asarray(sample_index, dtype=np.int64) % COUNTER_MODULUS).astype(np.float32)[:, None]


class StatusLine:
    """A progress line every few seconds: samples, measured rate, lag behind real time."""

    def __init__(self, name: str, interval_s: float, clock: Callable[[], float]) -> None:
        self.name, self.interval_s, self._clock = name, interval_s, clock
        self.samples = 0
        self._last = clock()
        self._last_samples = 0

    def update(
        self, n: int, lag_s: float | None = None, extra: Callable[[], str] | None = None
    ) -> None:
        self.samples += n
        now = self._clock()
        if now - self._last < self.interval_s:
            return
        extra_text = extra() if extra is not None else ""
        rate = (self.samples - self._last_samples) / (now - self._last)
        lag = f", lag {lag_s * 1e3:.1f} ms" if lag_s is not None else ""
        log.info("%s: %d samples, %.1f Hz%s%s", self.name, self.samples, rate, lag, extra_text)
        self._last, self._last_samples = now, self.samples
