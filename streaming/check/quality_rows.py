"""``eifer check``'s electrode rows: the pre-session checklist of the pipeline's ``quality`` topic.

Each electrode's state over the window is its median state in the window's reports (the state it
held at least half the time: a fault present throughout counts, a moment's flag does not, and an
electrode fixed early in the window counts as fixed). One judged row counts the states and names
the bad electrodes with their reasons ("electrodes: 21 good, 0 check, 1 bad", note "F3: flat"),
failing above ``max_bad_electrodes``; a second row names the electrodes to check (judged only
where ``max_check_electrodes`` is set).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from streaming.bus.pubsub import Message
from streaming.check.collect import Observation
from streaming.check.config import Thresholds
from streaming.check.rows import Row, judge
from streaming.dsp.quality_report import STATES

__all__ = ["electrode_states", "quality_rows"]

_NAMED = 8  # electrodes named in a note at most


def electrode_states(reports: list[Message]) -> tuple[list[str], list[str], list[list[str]]]:
    """``(channels, state, reasons)`` per electrode over ``reports`` (one channel list): its
    median state, and the reasons it was given while in that state (most frequent first)."""
    channels = list(reports[-1].fields["channels"])
    same = [m for m in reports if list(m.fields["channels"]) == channels]
    levels = np.array([[STATES.index(s) for s in m.fields["states"]] for m in same])
    median = np.sort(levels, axis=0)[len(same) // 2]  # the upper median
    reasons = []
    for c, level in enumerate(median):
        seen: Counter[str] = Counter()
        for m, row in zip(same, levels, strict=True):
            if row[c] == level:
                seen.update(m.fields["reasons"][c])
        reasons.append([r for r, _ in seen.most_common()])
    return channels, [STATES[k] for k in median], reasons


def _named(channels: list[str], states: list[str], reasons: list[list[str]], state: str) -> str:
    names = [
        f"{c}: {', '.join(r) or '?'}"
        for c, s, r in zip(channels, states, reasons, strict=True)
        if s == state
    ]
    return "; ".join(names[:_NAMED]) + ("; ..." if len(names) > _NAMED else "")


def quality_rows(obs: Observation, limits: Thresholds) -> list[Row]:
    """The electrode rows for the window's ``quality`` messages."""
    reports = [
        m for m in obs.topic("quality") if m.t is not None and obs.t_start <= m.t <= obs.t_end
    ]
    if not reports:
        return [
            Row("electrodes", None, "", "", None, "no quality message in the window (pipeline "
                "quality.enabled = false, or no EMG)")
        ]  # fmt: skip
    channels, states, reasons = electrode_states(reports)
    counts = {s: states.count(s) for s in STATES}
    summary = f"electrodes: {counts['good']} good, {counts['check']} check, {counts['bad']} bad"
    note = _named(channels, states, reasons, "bad")
    where = f"median over {len(reports)} reports"
    note = f"{note} ({where})" if note else where
    if limits.judge_quality:
        rows = [judge(summary, counts["bad"], "bad", "<=", limits.max_bad_electrodes, note)]
    else:
        rows = [Row(summary, counts["bad"], "bad", "", None, f"{note}; reported, not judged")]
    if counts["check"]:
        to_check = _named(channels, states, reasons, "check")
        if limits.judge_quality and limits.max_check_electrodes is not None:
            rows.append(
                judge("electrodes to check", counts["check"], "check", "<=",
                       limits.max_check_electrodes, to_check)
            )  # fmt: skip
        else:
            rows.append(Row("electrodes to check", counts["check"], "check", "", None, to_check))
    return rows
