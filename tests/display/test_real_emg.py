"""Biofeedback on a real sEMG recording (shared data) through the display's scorer and page.

The shared data hold no facial EMG (see its README); a real biceps recording with two
contractions drives a facial movement pattern, so the timing, noise and shape of the activity
are real while the muscle mapping is simulated.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from configs import config_path
from nodes.display.feedback import Feedback
from nodes.display.server import ServerThread
from streaming.acquisition.electrodes import load_scheme
from streaming.bus.pubsub import Publisher
from streaming.pipeline.biofeedback import load_movement_levels


def _windows(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    contraction = ((t > 11) & (t < 18)) | ((t > 30) & (t < 38))  # README: ~9.9-19.4, 28.2-39.4 s
    rest = (t > 3) & (t < 8) | (t > 22) & (t < 26)
    return contraction, rest


def test_real_contractions_score_high_for_their_pattern_and_show_the_weak_side(
    real_frames,
) -> None:
    t, act, labels = real_frames
    scheme = load_scheme("fridlund")
    feedback = Feedback(scheme, load_movement_levels(config_path("movements.toml")))
    feedback.select("Smile-Closed")
    results = [
        feedback.process({"channels": labels, "emg_measured": a}, ts)
        for ts, a in zip(t, act, strict=True)
    ]
    score = np.array([r["score"] for r in results])
    level = np.array([r["level"] for r in results])
    contraction, rest = _windows(t)
    assert np.median(level[contraction]) > 5 * np.median(level[rest])
    assert np.median(score[contraction]) > 85  # the right pattern (weak side and all)
    assert np.median(score[contraction]) > np.median(score[rest]) + 20
    pairs = scheme.pairs
    zyg = [
        k for k, (left, _) in enumerate(pairs) if scheme.channel(left).muscle == "zygomaticus_major"
    ]
    si = np.array([r["symmetry"][zyg[0]] for r in results])
    # right side at 40%: (1 - 0.4) / (1 + 0.4) = 0.43 when the contraction dominates the noise floor
    assert np.median(si[contraction]) == pytest.approx(0.43, abs=0.08)
    feedback.select("Forehead-Raise")  # the wrong movement scores low on the same activity
    wrong = [
        feedback.process({"channels": labels, "emg_measured": a}, ts)["score"]
        for ts, a in zip(t, act, strict=True)
    ]
    assert np.median(np.array(wrong)[contraction]) < 40


@pytest.mark.browser
@pytest.mark.slow
def test_page_follows_a_real_contraction(
    browser, real_frames, display_config, artifacts: Path
) -> None:
    t, act, labels = real_frames
    with Publisher("tcp://127.0.0.1:*") as pub:
        config = display_config(pub.address, target="Smile-Closed", trace_seconds=12.0)
        with ServerThread(config) as server:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(server.server.url)
            page.wait_for_function("() => window.eiferStats.connects === 1", timeout=15000)
            time.sleep(0.5)
            scores = []
            start = 6 * 30  # from rest into the first contraction, at 2x speed
            for k in range(start, start + 12 * 30):
                pub.publish(
                    "muscle",
                    {
                        "channels": labels,
                        "emg_measured": act[k],
                        "normalised": True,
                        "emg_missing": False,
                    },
                    t=float(t[k]),
                    frame=k,
                )
                time.sleep(1 / 60)
                if k % 30 == 0:
                    scores.append(page.text_content("#score"))
            page.screenshot(path=str(artifacts / "display_real_emg.png"), full_page=True)
            page.close()
    values = [int(s) for s in scores if s.isdigit()]
    assert values and max(values) > 85 and min(values) < max(values) - 20
