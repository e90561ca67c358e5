"""``eifer check``'s electrode rows (streaming/check/quality_rows.py) from ``quality`` messages."""

from __future__ import annotations

from streaming.bus.pubsub import decode, encode
from streaming.bus.schema import validate
from streaming.check.collect import Observation
from streaming.check.config import Thresholds
from streaming.check.quality_rows import quality_rows
from streaming.check.report import format_table, passed

CHANNELS = ["F1", "F2", "F3", "F4"]


def _quality(t: float, states: list[str], reasons: list[list[str]]) -> object:
    fields = {
        "sample_index": int(t * 4096),
        "channels": CHANNELS,
        "states": states,
        "reasons": reasons,
        "metrics": {"rms_uv": [3.0] * 4},
        "mains_hz": 50.0,
    }
    return validate(decode(encode("quality", fields, t=t)))


def _observation(reports: list) -> Observation:
    return Observation(t_start=0.0, t_end=10.0, messages=reports)


def test_a_bad_electrode_fails_the_check_and_is_named_with_its_reason() -> None:
    reports = [
        _quality(0.5 * k, ["good", "good", "bad", "check" if k == 3 else "good"],
                 [[], [], ["flat"], ["mains"] if k == 3 else []])
        for k in range(1, 11)
    ]  # fmt: skip
    # F4's single check report is a moment, not its state
    rows = quality_rows(_observation(reports), Thresholds())
    assert [(r.check, r.value, r.threshold, r.passed) for r in rows] == [
        ("electrodes: 3 good, 0 check, 1 bad", 1, "<= 0", False)
    ]
    assert rows[0].note == "F3: flat (median over 10 reports)"
    assert not passed(rows) and "FAIL" in format_table(rows)
    allowed = quality_rows(_observation(reports), Thresholds(max_bad_electrodes=1))
    assert allowed[0].passed is True
    reported = quality_rows(_observation(reports), Thresholds(judge_quality=False))
    assert reported[0].passed is None and reported[0].threshold == ""


def test_electrodes_to_check_are_named_and_judged_only_with_a_limit() -> None:
    reports = [_quality(1.0 + k, ["good", "check", "good", "good"], [[], ["mains"], [], []])
               for k in range(4)]  # fmt: skip
    rows = quality_rows(_observation(reports), Thresholds())
    assert rows[0].check == "electrodes: 3 good, 1 check, 0 bad" and rows[0].passed is True
    assert (rows[1].check, rows[1].value, rows[1].passed, rows[1].note) == (
        "electrodes to check",
        1,
        None,
        "F2: mains",
    )
    strict = quality_rows(_observation(reports), Thresholds(max_check_electrodes=0))
    assert strict[1].passed is False


def test_reports_outside_the_window_and_no_reports_judge_nothing() -> None:
    late = [_quality(12.0, ["bad"] * 4, [["flat"]] * 4)]
    rows = quality_rows(_observation(late), Thresholds())
    assert len(rows) == 1 and rows[0].value is None and rows[0].passed is None
    assert "no quality message" in rows[0].note
