"""``eifer check`` judges the video correlations only over a window long enough to hold several
movements (``min_video_r_window_s``): over one or two movements r says little (the demo's
encoders: 0.58 over 100 s at protocol speed 3, 0.34 over 60 s at speed 1)."""

from __future__ import annotations

from streaming.bus.pubsub import Message
from streaming.check.config import Thresholds
from streaming.check.report import _too_short


def _frames(span_s: float, n: int = 50) -> list[Message]:
    return [Message("expression", {}, t=1000.0 + span_s * i / (n - 1), frame=i) for i in range(n)]


def test_video_r_is_judged_over_90_s_and_only_reported_below() -> None:
    limits = Thresholds()
    assert limits.min_video_r_window_s == 90.0
    assert _too_short(_frames(100.0), limits) is None
    note = _too_short(_frames(40.0), limits)
    assert note is not None and "not judged: 40 s of frames" in note
    assert _too_short([Message("expression", {}, t=1000.0, frame=0)], limits) is not None
    assert _too_short(_frames(40.0), Thresholds(min_video_r_window_s=30)) is None
