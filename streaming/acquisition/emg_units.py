"""The EMG stream's declared channel unit, as a factor to microvolts.

The ``EMG`` contract is microvolts (DESIGN.md), but other sources declare what they send in
``desc/channels/channel/unit`` (XDF meta-data conventions): ``volts`` / ``millivolts`` /
``microvolts`` and their symbols, or, from MNE-LSL's ``PlayerLSL`` (``StreamInfo
.set_channel_units``), the FIFF unit multiplier as a decimal exponent (``"0"`` = volts, ``"-3"``
= millivolts, ``"-6"`` = microvolts; MNE keeps raw data in SI units, so a played recording is in
volts). A unit we cannot read is refused: a guess off by 10^6 is worse than no data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np

from streaming.errors import StreamFormatError

__all__ = ["channel_units", "microvolts_per_unit", "to_microvolts_scale"]

_MICROVOLTS_PER: dict[str, float] = {
    **dict.fromkeys(("volts", "volt", "v"), 1e6),
    **dict.fromkeys(("millivolts", "millivolt", "mv"), 1e3),
    **dict.fromkeys(("microvolts", "microvolt", "uv", "\u00b5v", "\u03bcv"), 1.0),
    **dict.fromkeys(("nanovolts", "nanovolt", "nv"), 1e-3),
}


def channel_units(info: Any) -> list[str]:
    """The declared unit of every channel (``""`` where a channel declares none)."""
    n = info.channel_count()
    units = [""] * n
    root = ET.fromstring(info.as_xml())
    for i, channel in enumerate(root.findall("./desc/channels/channel")[:n]):
        units[i] = (channel.findtext("unit") or "").strip()
    return units


def microvolts_per_unit(unit: str) -> float | None:
    """Microvolts in one ``unit`` (None when the unit is not a voltage we know)."""
    text = unit.strip()
    if text.lstrip("+-").isdigit():  # MNE-LSL: FIFF unit multiplier, 10**text volts
        exponent = int(text)
        return 10.0 ** (exponent + 6) if -12 <= exponent <= 3 else None
    return _MICROVOLTS_PER.get(text.lower().replace(" ", ""))


def to_microvolts_scale(
    units: Sequence[str], labels: Sequence[str], stream: str, undeclared: str
) -> np.ndarray:
    """Per-channel factors that turn the stream's values into microvolts.

    ``undeclared`` is the unit assumed for channels that declare none (the contract's
    microvolts by default). Raises :class:`StreamFormatError` naming every channel whose unit is
    not a known voltage.
    """
    scale = np.empty(len(labels))
    bad: list[str] = []
    for i, (label, unit) in enumerate(zip(labels, units, strict=True)):
        factor = microvolts_per_unit(unit or undeclared)
        if factor is None:
            bad.append(f"{label}={unit or undeclared!r}")
        else:
            scale[i] = factor
    if bad:
        raise StreamFormatError(
            f"EMG stream {stream!r} declares units the pipeline cannot convert to microvolts: "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. Known: volts, millivolts, "
            "microvolts, nanovolts (or V, mV, uV, nV; MNE-LSL exponents 0, -3, -6, -9)"
        )
    return scale
