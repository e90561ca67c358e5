"""Required streams, as LabRecorder's ``RequiredStreams``: ``"Name"`` or ``"Name (hostname)"``.

A required stream is recorded whatever the selection, shown as missing until it appears, and a
recording that starts without it asks, refuses or goes ahead (``missing_required``; LabRecorder
asks in a dialog). The ``"Name (hostname)"`` form is LabRecorder's stream-list label (no spaces
inside the parentheses, ``LabRecorder.cfg``), so a lab's existing list can be pasted in. A stream
whose own name ends in parentheses (``"EMG (raw)"``) is still required by its bare name: the text
is taken as a whole name first, as ``"Name (hostname)"`` second; the host name's case does not
matter (``LAB-PC1`` is ``lab-pc1``), the stream name's does, as in LSL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["missing_required", "parse_required", "required_matches"]

_WITH_HOST = re.compile(r"^(?P<name>.+?)\s+\((?P<host>\S+)\)$")


def parse_required(text: str) -> tuple[str, str | None]:
    """``"EMG (labpc)"`` -> ("EMG", "labpc"); ``"EMG"`` -> ("EMG", None)."""
    match = _WITH_HOST.match(text.strip())
    if match is None:
        return text.strip(), None
    return match["name"], match["host"]


def _matches(required: str, info: Any) -> bool:
    if info.name() == required.strip():  # the whole text is the name, parentheses and all
        return True
    name, host = parse_required(required)
    # host names are case-insensitive (RFC 4343): Windows reports LAB-PC1, a lab may type lab-pc1
    return host is not None and info.name() == name and info.hostname().lower() == host.lower()


def required_matches(required: Sequence[str], info: Any) -> bool:
    """Whether ``info`` is one of the required streams."""
    return any(_matches(r, info) for r in required)


def missing_required(required: Sequence[str], visible: Iterable[Any]) -> list[str]:
    """The required streams that none of ``visible`` is."""
    infos = list(visible)
    return [r for r in required if not any(_matches(r, info) for info in infos)]
