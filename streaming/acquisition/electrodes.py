"""Facial-EMG electrode schemes (Fridlund bipolar, Kuramoto monopolar) as typed, shipped TOML.

A scheme names each channel, the muscle under it, the face side, its FACS action units, its
left/right partner (for symmetry views: facial palsy is one-sided) and an approximate position on a
frontal face outline for heatmaps. Files live in ``configs/electrodes/<name>.toml``; see their
headers for sources (EIFER supplement Table 1, cvjena/electromyogram ``schemes.py``).

Positions are in a frontal-view frame as the camera sees the face: x = 0 on the midline, +x to the
viewer's right (= the participant's left), y = 0 on the Frankfort horizontal, +y up, about -1..1.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from configs import CONFIG_DIR
from streaming.config import Config, ConfigError, load_toml, validate

__all__ = [
    "Channel",
    "ElectrodeScheme",
    "Reference",
    "available_schemes",
    "load_scheme",
]

Side = Literal["left", "right", "midline"]


class Channel(Config):
    """One recorded derivation (a bipolar pair or a monopolar electrode against the reference)."""

    label: str = Field(min_length=1)
    muscle: str = ""  # snake_case muscle name; "" where no single muscle lies under the electrode
    short: str = ""  # the Jena group's short name (e.g. "med Front"), where one exists
    side: Side
    action_units: list[int] = []
    partner: str | None = None  # mirror-image channel on the other face side
    position: tuple[float, float]
    position_guess: bool = False  # True where no source gave the position


class Reference(Config):
    """The reference electrode of a monopolar scheme: its label and face position."""

    label: str
    position: tuple[float, float]


class ElectrodeScheme(Config):
    """A named set of EMG channels with muscles, sides, pairs and face positions."""

    name: str
    description: str = ""
    montage: Literal["bipolar", "monopolar"]
    unit: str = "microvolts"
    position_source: str = ""
    reference: Reference | None = None
    orderings: dict[str, list[str]] = {}
    channels: list[Channel] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ElectrodeScheme:
        labels = [c.label for c in self.channels]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ValueError(f"duplicate channel labels {duplicates}")
        by_label = {c.label: c for c in self.channels}
        for channel in self.channels:
            if channel.partner is None:
                continue
            partner = by_label.get(channel.partner)
            if partner is None:
                raise ValueError(f"{channel.label}: partner {channel.partner!r} is not a channel")
            if partner.partner != channel.label:
                raise ValueError(
                    f"{channel.label} names partner {partner.label}, which names "
                    f"{partner.partner!r}: pairs must be mutual"
                )
            if {channel.side, partner.side} != {"left", "right"}:
                raise ValueError(
                    f"pair {channel.label}/{partner.label} must be one left, one right"
                )
        for key, order in self.orderings.items():
            if sorted(order) != sorted(labels):
                missing = sorted(set(labels) - set(order))
                extra = sorted(set(order) - set(labels))
                raise ValueError(
                    f"ordering {key!r} must list every channel once "
                    f"(missing {missing}, unknown {extra}, {len(order)} entries)"
                )
        return self

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.channels]

    @property
    def muscles(self) -> list[str]:
        """Muscle under each channel, in channel order ("" where none)."""
        return [c.muscle for c in self.channels]

    @property
    def sides(self) -> list[str]:
        return [c.side for c in self.channels]

    @property
    def positions(self) -> np.ndarray:
        """``(n_channels, 2)`` float64 face positions (x right in the image, y up)."""
        return np.array([c.position for c in self.channels], dtype=np.float64)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Left/right partner pairs as ``(left_label, right_label)``, in channel order."""
        result = []
        for channel in self.channels:
            if channel.partner is not None and channel.side == "left":
                result.append((channel.label, channel.partner))
        return result

    @cached_property
    def _index(self) -> dict[str, int]:
        return {c.label: i for i, c in enumerate(self.channels)}

    def __len__(self) -> int:
        return len(self.channels)

    def index(self, label: str) -> int:
        """Position of ``label`` in the channel order; ``KeyError`` naming the known labels."""
        try:
            return self._index[label]
        except KeyError:
            raise KeyError(
                f"scheme {self.name!r} has no channel {label!r}; channels: {self.labels}"
            ) from None

    def channel(self, label: str) -> Channel:
        return self.channels[self.index(label)]

    def ordering(self, name: str) -> list[int]:
        """Indices that reorder channels into a named ordering (e.g. ``"mmm"`` for MMM CSVs).

        ``data[:, scheme.ordering("mmm")]`` turns channel-ordered data into that ordering.
        """
        if name not in self.orderings:
            raise KeyError(
                f"scheme {self.name!r} has no ordering {name!r}; known: {sorted(self.orderings)}"
            )
        return [self.index(label) for label in self.orderings[name]]

    def mirror_index(self) -> np.ndarray:
        """For each channel the index of its partner (itself where it has none)."""
        return np.array(
            [self.index(c.partner) if c.partner else i for i, c in enumerate(self.channels)],
            dtype=np.intp,
        )


def available_schemes() -> list[str]:
    """Names of the shipped schemes (``configs/electrodes/*.toml``)."""
    return sorted(p.stem for p in (CONFIG_DIR / "electrodes").glob("*.toml"))


def load_scheme(name_or_path: str | Path) -> ElectrodeScheme:
    """A shipped scheme by name (``"fridlund"``, ``"kuramoto"``) or a scheme TOML file by path.

    Raises :class:`ConfigError` naming the scheme, the file and the bad key.
    """
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
    else:
        path = CONFIG_DIR / "electrodes" / f"{text.lower()}.toml"
        if not path.is_file():
            raise ConfigError(
                f"unknown electrode scheme {text!r}; shipped schemes: {available_schemes()} "
                "(or give the path of a scheme .toml file)"
            )
    return validate(ElectrodeScheme, load_toml(path), str(path))
