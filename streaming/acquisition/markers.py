"""The protocol marker grammar: the strings on the ``Markers`` LSL stream, written and parsed here.

One module for the three users: the protocol node writes them
(:mod:`streaming.acquisition.protocol`), the simulated participant follows them
(:mod:`simulation.marker_follower`) and the exporter turns them into MNE annotations
(:mod:`streaming.recording.export`). The grammar:

- ``protocol:start``, ``protocol:end``, ``protocol:abort`` (after a stop);
- ``show:<movement>:<rep>``: the instruction appears (face at rest);
- ``start:<movement>:<rep>`` / ``stop:<movement>:<rep>``: around the perform phase.

``<movement>`` may itself hold colons; ``<rep>`` is the 1-based repetition (digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PROTOCOL_ABORT",
    "PROTOCOL_END",
    "PROTOCOL_START",
    "TrialMarker",
    "ends_protocol",
    "parse_trial_marker",
    "trial_marker",
]

PROTOCOL_START = "protocol:start"
PROTOCOL_END = "protocol:end"
PROTOCOL_ABORT = "protocol:abort"

TrialKind = Literal["show", "start", "stop"]
_TRIAL = re.compile(r"^(show|start|stop):(.+):(\d+)$")


@dataclass(frozen=True)
class TrialMarker:
    """A parsed ``<kind>:<movement>:<rep>`` marker."""

    kind: TrialKind
    movement: str
    repetition: int

    @property
    def trial(self) -> str:
        """``<movement>:<rep>``: the key that pairs a ``start`` with its ``stop``."""
        return f"{self.movement}:{self.repetition}"

    def __str__(self) -> str:
        return f"{self.kind}:{self.trial}"


def trial_marker(kind: TrialKind, movement: str, repetition: int) -> str:
    """The marker text for one phase of one trial, e.g. ``start:Smile-Open:2``."""
    return str(TrialMarker(kind, movement, repetition))


def parse_trial_marker(text: str) -> TrialMarker | None:
    """The trial marker in ``text``, or None for any other marker (``protocol:*``, foreign)."""
    match = _TRIAL.match(text)
    if match is None:
        return None
    kind: TrialKind = match.group(1)  # type: ignore[assignment]
    return TrialMarker(kind, match.group(2), int(match.group(3)))


def ends_protocol(text: str) -> bool:
    """``protocol:end`` or ``protocol:abort``: every movement stops."""
    return text in (PROTOCOL_END, PROTOCOL_ABORT)
