"""One row of ``eifer check``'s table, and how a figure is judged against its threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Row", "judge"]


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure and, when judged, its threshold and verdict."""

    check: str
    value: float | int | None  # counts stay integers
    unit: str = ""
    threshold: str = ""  # e.g. ">= 0.95"; "" = reported, not judged
    passed: bool | None = None  # None: not judged (no threshold, or nothing to judge)
    note: str = ""


def judge(
    check: str, value: float | int | None, unit: str, op: str, limit: float, note: str = ""
) -> Row:
    """The row of ``value`` judged ``op`` (``>=`` / ``<=``) ``limit``; not judged without a
    finite value."""
    if value is None or not math.isfinite(value):
        return Row(check, None, unit, f"{op} {limit:g}", None, note or "nothing to judge")
    ok = value >= limit if op == ">=" else value <= limit
    shown = value if isinstance(value, int) else float(value)
    return Row(check, shown, unit, f"{op} {limit:g}", bool(ok), note)
