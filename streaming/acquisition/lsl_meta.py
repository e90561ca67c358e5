"""LSL stream metadata: a ``StreamInfo`` built with channel labels, units, types and ``desc``,
and the same read back.

Channel metadata follows the XDF meta-data conventions (``desc/channels/channel/label``,
``unit``, ``type``) that LabRecorder, pyxdf and MNE-LSL read. :mod:`streaming.acquisition.lsl_io`
(inlets, outlets, stream discovery) re-exports these names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "NUMPY_DTYPES",
    "channel_format",
    "channel_labels",
    "desc_to_dict",
    "stream_info",
]

# LSL channel_format names (XDF uses the same strings) -> numpy dtypes; None = string.
NUMPY_DTYPES: dict[str, np.dtype | None] = {
    "float32": np.dtype(np.float32),
    "double64": np.dtype(np.float64),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "string": None,
}


def _append_desc(element: Any, key: str, value: Any) -> None:
    """Write ``value`` under ``element`` as child ``key``: dict -> children, list -> repeats."""
    if isinstance(value, Mapping):
        child = element.append_child(key)
        for sub_key, sub_value in value.items():
            _append_desc(child, str(sub_key), sub_value)
    elif isinstance(value, list | tuple):
        for item in value:
            _append_desc(element, key, item)
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        element.append_child_value(key, text)


def stream_info(
    name: str,
    stype: str,
    channel_count: int,
    rate_hz: float,
    channel_format: str,
    source_id: str,
    *,
    channel_labels: Sequence[str] | None = None,
    channel_unit: str | Sequence[str] | None = None,
    channel_type: str | Sequence[str] | None = None,
    desc: Mapping[str, Any] | None = None,
) -> Any:
    """Build a ``pylsl.StreamInfo`` with channel labels, units and types in ``desc/channels``.

    Channel metadata follows the XDF meta-data conventions (``desc/channels/channel/label``,
    ``unit``, ``type``) that LabRecorder, pyxdf and MNE-LSL read.

    Parameters
    ----------
    name, stype : str
        Stream name and type (e.g. ``"EMG"``, ``"EMG"``; DESIGN.md names the contract streams).
    channel_count : int
        Channels per sample (>= 1).
    rate_hz : float
        Nominal sampling rate; 0 for irregular streams (markers).
    channel_format : str
        One of ``NUMPY_DTYPES`` (``"float32"``, ``"double64"``, ``"int8"``, ``"string"``, ...).
    source_id : str
        Stable identity of the source: LSL resumes a lost stream with the same source id.
    channel_labels : sequence of str | None
        One label per channel (default ``ch1``, ``ch2``, ... when units or types are given).
    channel_unit, channel_type : str | sequence of str | None
        One value for all channels, or one per channel.
    desc : Mapping | None
        Further ``desc`` entries: a mapping becomes child elements, a list repeated elements.

    Returns
    -------
    pylsl.StreamInfo

    Raises
    ------
    ValueError
        Unknown channel format, no channels, or as many labels as channels not given.
    """
    import pylsl

    if channel_format not in NUMPY_DTYPES:
        raise ValueError(
            f"unknown channel format {channel_format!r}; use one of {list(NUMPY_DTYPES)}"
        )
    if channel_count < 1:
        raise ValueError(f"channel_count must be >= 1, got {channel_count}")
    info = pylsl.StreamInfo(name, stype, channel_count, rate_hz, channel_format, source_id)
    if channel_labels is not None or channel_unit is not None or channel_type is not None:
        labels = list(channel_labels) if channel_labels is not None else None
        if labels is not None and len(labels) != channel_count:
            raise ValueError(f"{len(labels)} channel labels for {channel_count} channels")
        channels = info.desc().append_child("channels")
        for i in range(channel_count):
            channel = channels.append_child("channel")
            channel.append_child_value("label", labels[i] if labels else f"ch{i + 1}")
            for key, value in (("unit", channel_unit), ("type", channel_type)):
                if value is not None:
                    channel.append_child_value(key, value if isinstance(value, str) else value[i])
    for key, value in (desc or {}).items():
        _append_desc(info.desc(), str(key), value)
    return info


def _element_to_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    result: dict[str, Any] = {}
    for child in children:
        value = _element_to_value(child)
        if child.tag in result:
            if not isinstance(result[child.tag], list):
                result[child.tag] = [result[child.tag]]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def desc_to_dict(info: Any) -> dict[str, Any]:
    """The stream's ``desc`` element as nested dicts (repeated children become lists)."""
    root = ET.fromstring(info.as_xml())
    desc = root.find("desc")
    if desc is None:
        return {}
    value = _element_to_value(desc)
    return value if isinstance(value, dict) else {}


def channel_labels(info: Any) -> list[str]:
    """Channel labels from ``desc/channels/channel/label``; ``ch1``.. where absent."""
    n = info.channel_count()
    labels = [f"ch{i + 1}" for i in range(n)]
    root = ET.fromstring(info.as_xml())
    for i, channel in enumerate(root.findall("./desc/channels/channel")[:n]):
        label = channel.findtext("label")
        if label:
            labels[i] = label
    return labels


def channel_format(info: Any) -> str:
    """The stream's channel format name (``float32``, ``string``, ...), as XDF writes it."""
    return ET.fromstring(info.as_xml()).findtext("channel_format") or "float32"
