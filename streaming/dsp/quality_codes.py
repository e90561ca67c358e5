"""The electrode-quality timeline as numbers: the layout of the ``<EMG name>-quality`` LSL stream.

The pipeline pushes one sample per :class:`~streaming.dsp.quality_report.QualityReport`, stamped
with the report's ``t_lsl`` (the end of the block it judges), so a recorder keeps the timeline in
the session's XDF beside the EMG it describes, replay re-creates it, and any XDF reader (pyxdf,
MNE, MATLAB) gets plain numbers. For ``n`` EMG channels a sample holds ``3 n`` values (float32,
exact for these small integers):

- ``<label>``: the state code, 0 good, 1 check, 2 bad (:data:`STATES` order);
- ``reasons_<label>``: the reasons as a bitmask, bit ``i`` = ``REASONS[i]`` (``nan`` 1, ``flat``
  2, ``railed`` 4, ...; ``bridged`` stands for ``bridged:<partner>``);
- ``partner_<label>``: the bridge partner's channel number (1-based in the EMG channel order),
  0 none.

The stream's ``desc`` says so: ``of_stream`` (the EMG stream), ``update_s``, ``states`` and
``reasons`` (comma-separated, in code order) and ``emg_channels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streaming.dsp.quality_report import REASONS, STATES, QualityReport, reason_kind

__all__ = [
    "STREAM_TYPE",
    "QualityTimeline",
    "decode_timeline",
    "encode_report",
    "reasons_of_bits",
    "stream_channels",
    "stream_desc",
]

STREAM_TYPE = "EMGQuality"
_BIT = {reason: 1 << i for i, reason in enumerate(REASONS)}


def stream_channels(labels: Sequence[str]) -> list[str]:
    """The stream's channel labels for EMG channels ``labels``."""
    labels = list(labels)
    return labels + [f"reasons_{x}" for x in labels] + [f"partner_{x}" for x in labels]


def stream_desc(of_stream: str, labels: Sequence[str], update_s: float) -> dict[str, Any]:
    """The stream's ``desc`` entries (beside ``channels``)."""
    return {
        "of_stream": of_stream,
        "update_s": update_s,
        "states": ",".join(STATES),
        "reasons": ",".join(REASONS),
        "emg_channels": ",".join(labels),
    }


def encode_report(report: QualityReport) -> np.ndarray:
    """One stream sample ``(3 n,)`` float32 for ``report``."""
    where = {label: i + 1 for i, label in enumerate(report.channels)}
    bits = [
        sum(_BIT[reason_kind(r)] for r in rs if reason_kind(r) in _BIT) for rs in report.reasons
    ]
    partners = [where.get(p, 0) for p in report.bridge_partner] or [0] * len(report.channels)
    return np.concatenate([report.levels, bits, partners]).astype(np.float32)


def reasons_of_bits(bits: int, partner: str = "") -> tuple[str, ...]:
    """The reasons a bitmask holds, in :data:`REASONS` order (``bridged:<partner>``)."""
    return tuple(
        (f"bridged:{partner}" if r == "bridged" and partner else r)
        for r in REASONS
        if int(bits) & _BIT[r]
    )


@dataclass(frozen=True)
class QualityTimeline:
    """A recorded quality stream, decoded: per report (row) and channel (column)."""

    times: np.ndarray  # (T,) LSL time of each report (the end of the block it judges)
    channels: tuple[str, ...]
    levels: np.ndarray  # (T, n) int8: 0 good, 1 check, 2 bad
    reason_bits: np.ndarray  # (T, n) int64
    partners: np.ndarray  # (T, n) int64: 1-based partner channel, 0 none
    update_s: float

    def reasons(self, row: int, column: int) -> tuple[str, ...]:
        p = int(self.partners[row, column])
        partner = self.channels[p - 1] if 0 < p <= len(self.channels) else ""
        return reasons_of_bits(int(self.reason_bits[row, column]), partner)


def decode_timeline(
    times: np.ndarray, data: np.ndarray, channels: Sequence[str], update_s: float
) -> QualityTimeline:
    """The timeline of a quality stream's samples ``data`` ``(T, 3 n)`` for EMG ``channels``.

    Raises ValueError when the samples do not have that layout or hold codes outside it."""
    n = len(channels)
    x = np.asarray(data, dtype=np.float64).reshape(len(times), -1)
    if x.shape[1] != 3 * n:
        raise ValueError(f"quality stream has {x.shape[1]} channels, not 3 x {n} EMG channels")
    codes = np.nan_to_num(x, nan=-1.0)
    if np.any(codes != np.round(codes)) or np.any(codes < 0):
        raise ValueError("quality stream holds values that are not codes (non-integers or < 0)")
    levels, bits, partners = codes[:, :n], codes[:, n : 2 * n], codes[:, 2 * n :]
    if np.any(levels > len(STATES) - 1) or np.any(partners > n):
        raise ValueError("quality stream holds a state or partner code outside its layout")
    return QualityTimeline(
        times=np.asarray(times, dtype=np.float64),
        channels=tuple(channels),
        levels=levels.astype(np.int8),
        reason_bits=bits.astype(np.int64),
        partners=partners.astype(np.int64),
        update_s=float(update_s),
    )
