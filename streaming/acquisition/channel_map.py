"""The EMG bridge's channel map: contract channels (e.g. Fridlund F1..F22) as bipolar differences
or copies of a real amplifier's labelled electrode channels, with unit conversion to microvolts."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from streaming.config import ConfigError
from streaming.errors import StreamFormatError

log = logging.getLogger(__name__)


class ChannelMap:
    """Contract channels as differences/copies of labelled input channels (vectorised).

    ``apply(data)`` returns ``(scale * (data[:, plus] - data[:, minus]))`` with ``minus``
    pointing at a zero column for pass-through channels.

    Parameters
    ----------
    mapping : Mapping
        Contract label -> an input label (copied) or ``[plus, minus]`` (bipolar difference);
        empty: every input channel passed through under its own label.
    input_labels : list of str
        The amplifier stream's channel labels (unique).
    scale : float
        Factor applied to every output (e.g. the unit's factor to microvolts).
    exclude : tuple of str
        Input labels left out of the pass-through of an empty ``mapping`` (e.g. a counter).
    stream : str
        The source stream's description, for error messages.

    Raises
    ------
    streaming.errors.StreamFormatError
        Duplicate input labels, or labels the mapping needs that the stream lacks.
    streaming.config.ConfigError
        A mapping entry with neither one nor two labels.
    """

    def __init__(
        self,
        mapping: Mapping[str, str | tuple[str, str] | list[str]],
        input_labels: list[str],
        *,
        scale: float = 1.0,
        exclude: tuple[str, ...] = (),
        stream: str = "the source stream",
    ) -> None:
        duplicates = sorted({x for x in input_labels if input_labels.count(x) > 1})
        if duplicates:
            raise StreamFormatError(f"{stream} has duplicate channel labels {duplicates}")
        index = {label: i for i, label in enumerate(input_labels)}
        if not mapping:
            mapping = {label: label for label in input_labels if label not in exclude}
        zero = len(input_labels)  # index of the zero column appended in apply()
        plus, minus, missing, derivations = [], [], [], []
        for out, spec in mapping.items():
            parts = [spec] if isinstance(spec, str) else list(spec)
            if len(parts) not in (1, 2):
                raise ConfigError(f"bridge.channels.{out}: give one label or [plus, minus]")
            for part in parts:
                if part not in index:
                    missing.append(f"{out} needs {part!r}")
            plus.append(index.get(parts[0], zero))
            minus.append(index.get(parts[1], zero) if len(parts) == 2 else zero)
            derivations.append(
                {"label": out, "plus": parts[0], "minus": parts[1] if len(parts) == 2 else ""}
            )
        if missing:
            raise StreamFormatError(
                f"{stream} lacks channel labels the channel map needs ({'; '.join(missing)}); "
                f"its labels are {input_labels}. Fix [bridge.channels] or the amplifier's labels."
            )
        self.labels = list(mapping)
        self.derivations = derivations
        self.inputs = sorted(
            {d["plus"] for d in derivations} | {d["minus"] for d in derivations} - {""}
        )
        self._plus = np.array(plus, dtype=np.intp)
        self._minus = np.array(minus, dtype=np.intp)
        self._scale = float(scale)

    def apply(self, data: np.ndarray) -> np.ndarray:
        x = np.asarray(data, dtype=np.float64)
        padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)
        out = padded[:, self._plus] - padded[:, self._minus]
        if self._scale != 1.0:
            out *= self._scale
        return out


# channel unit as written in desc/channels/channel/unit -> factor to microvolts
UNIT_TO_UV = {
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "nv": 1e-3, "nanovolt": 1e-3, "nanovolts": 1e-3,
}  # fmt: skip


def unit_scale(units: list[str], stream: str = "the source stream") -> float:
    """Factor to microvolts from the source's channel units (all must agree; none: 1.0)."""
    known = {u.strip().lower() for u in units if u and u.strip()}
    if not known:
        log.warning("%s declares no channel unit: assuming microvolts (set bridge.scale)", stream)
        return 1.0
    unknown = sorted(u for u in known if u not in UNIT_TO_UV)
    factors = {UNIT_TO_UV[u] for u in known if u in UNIT_TO_UV}
    if unknown or len(factors) != 1:
        raise StreamFormatError(
            f"{stream} has channel units {sorted(known)}: cannot convert to microvolts "
            "automatically; set bridge.scale to the factor"
        )
    return factors.pop()


def order_by_scheme(labels: list[str], scheme_name: str, stream: str) -> list[str]:
    """The output labels in scheme order; an error naming missing/unknown ones otherwise."""
    from streaming.acquisition.electrodes import load_scheme

    scheme = load_scheme(scheme_name)
    missing = [x for x in scheme.labels if x not in labels]
    unknown = [x for x in labels if x not in scheme.labels]
    if missing or unknown:
        raise StreamFormatError(
            f"bridging {stream} as scheme {scheme.name!r}: the channel map gives {labels}; "
            f"missing {missing}, not in the scheme {unknown}. Fix [bridge.channels]."
        )
    return scheme.labels
