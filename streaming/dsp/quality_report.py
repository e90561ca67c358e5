"""What the EMG quality monitor says after each block: :class:`QualityReport` and its vocabulary.

Kept apart from the monitor (:mod:`streaming.dsp.quality`) so that readers of reports (the bus
schema, the recorder's summary, the export's annotations, ``eifer check``) depend on the words and
the record only, not on the analysis. The vocabulary is a contract: the ``quality`` bus topic
(README "Contract additions") carries :meth:`QualityReport.to_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BAD",
    "CHECK",
    "GOOD",
    "MAINS_HZ_RANGE",
    "METRICS",
    "REASONS",
    "STATES",
    "QualityReport",
    "reason_kind",
]

GOOD, CHECK, BAD = "good", "check", "bad"
STATES = (GOOD, CHECK, BAD)  # index = level (the XDF quality stream's codes 0, 1, 2)
# a report's mains frequency (50 or 60 Hz; 400 Hz aboard aircraft), inclusive: the bus contract
# holds reports to it, and the display's 5-decimal rounding cannot push a valid value out of it
MAINS_HZ_RANGE = (1.0, 1000.0)
# reason order in a report (most telling first); "bridged" is reported as "bridged:<partner>"
REASONS = (
    "nan",
    "flat",
    "railed",
    "stuck",
    "noise",
    "mains",
    "bridged",
    "motion",
    "baseline",
    "silent",
)
METRICS = (
    "mains_db",  # mains lines' power against the EMG band's (dB)
    "mains_uv",  # RMS of the mains lines (uV)
    "rms_uv",  # EMG-band RMS over the window, mains lines removed (uV)
    "rest_rms_uv",  # rest baseline RMS (uV); NaN until a rest block was seen
    "lf_fraction",  # power below 20 Hz / (that + EMG band)
    "spike_count",  # motion spikes in the window
    "nan_fraction",
    "stuck_fraction",  # samples equal to their predecessor
    "railed_fraction",  # samples at the range (or repeated extremes)
    "noise_db",  # noise-band power against the neighbours' median (dB); NaN without neighbours
    "bridge_corr",  # largest HF correlation with a similar-level neighbour
    "activity_snr_db",  # EMG-band power against the rest baseline (dB)
    "expected_level",  # what the current movement asks of the channel's muscle (0..1)
)


def reason_kind(reason: str) -> str:
    """The reason without its detail: ``bridged:F19`` -> ``bridged``."""
    return reason.split(":", 1)[0]


@dataclass(frozen=True)
class QualityReport:
    """Quality of every channel after one block.

    ``t_lsl``: LSL time of the block's last sample (None when the caller gave no times);
    ``sample_index``: index of the sample after the block (samples since the monitor started).
    ``states[i]``, ``reasons[i]`` and ``metrics[name][i]`` belong to ``channels[i]``.
    """

    t_lsl: float | None
    sample_index: int
    channels: tuple[str, ...]
    states: tuple[str, ...]
    reasons: tuple[tuple[str, ...], ...]
    metrics: Mapping[str, tuple[float, ...]]
    mains_hz: float
    movement: str | None = None
    bridge_partner: tuple[str, ...] = field(default=())  # "" where none

    def state(self, label: str) -> str:
        return self.states[self.channels.index(label)]

    def reasons_of(self, label: str) -> tuple[str, ...]:
        return self.reasons[self.channels.index(label)]

    def metric(self, name: str, label: str) -> float:
        return self.metrics[name][self.channels.index(label)]

    @property
    def bad_channels(self) -> list[str]:
        return [c for c, s in zip(self.channels, self.states, strict=True) if s == BAD]

    @property
    def levels(self) -> tuple[int, ...]:
        """Per channel 0 good, 1 check, 2 bad."""
        return tuple(STATES.index(s) for s in self.states)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of lists, floats and strings (msgpack / JSON; NaN where unknown)."""
        return {
            "t_lsl": self.t_lsl,
            "sample_index": self.sample_index,
            "channels": list(self.channels),
            "states": list(self.states),
            "reasons": [list(r) for r in self.reasons],
            "metrics": {k: [float(v) for v in vals] for k, vals in self.metrics.items()},
            "mains_hz": self.mains_hz,
            "movement": self.movement,
            "bridge_partner": list(self.bridge_partner),
        }

    @classmethod
    def from_levels(
        cls,
        level: np.ndarray,
        partner: tuple[str, ...],
        metrics: Mapping[str, np.ndarray],
        t_lsl: float | None,
        sample_index: int,
        channels: tuple[str, ...],
        mains_hz: float,
        movement: str | None,
    ) -> QualityReport:
        """The report of the monitor's ``(channels, REASONS)`` level matrix (0/1/2 per reason):
        a channel's state is its worst reason's level; ``partner`` names each bridge partner."""
        reasons = tuple(
            tuple(
                f"bridged:{partner[c]}" if REASONS[r] == "bridged" else REASONS[r]
                for r in np.flatnonzero(row)
            )
            for c, row in enumerate(level)
        )
        return cls(
            t_lsl=t_lsl,
            sample_index=sample_index,
            channels=channels,
            states=tuple(STATES[s] for s in level.max(axis=1)),
            reasons=reasons,
            metrics={k: tuple(float(v) for v in metrics[k]) for k in METRICS},
            mains_hz=mains_hz,
            movement=movement,
            bridge_partner=partner,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReport:
        """The report of :meth:`to_dict` (or of a checked ``quality`` bus message's fields:
        metric vectors may be arrays, ``t_lsl`` may be absent)."""
        t_lsl = data.get("t_lsl")
        return cls(
            t_lsl=None if t_lsl is None else float(t_lsl),
            sample_index=int(data["sample_index"]),
            channels=tuple(data["channels"]),
            states=tuple(data["states"]),
            reasons=tuple(tuple(r) for r in data["reasons"]),
            metrics={k: tuple(float(x) for x in v) for k, v in data.get("metrics", {}).items()},
            mains_hz=float(data["mains_hz"]),
            movement=data.get("movement"),
            bridge_partner=tuple(data.get("bridge_partner", ())),
        )
