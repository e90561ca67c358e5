"""The quality monitor on the real surface-EMG recordings (1 kHz, not facial; shared/data/emg).

Each channel is judged alone (no electrode geometry: no neighbour comparisons), in microvolts by
a unit read from the data README: ``bbcontractions`` and the UCI gait file as mV (the README
leaves bbcontractions' unit open; x1000 gives 10-20 uV at rest and ~100-200 uV RMS in the
contractions), ``biosppy_emg_1`` in 12-bit counts at 0.8 uV per count (the BITalino EMG sensor's
3.3 V / 4096 / gain 1009; BioSPPy comes from the BITalino group, but the file states no gain, so
this is a guess). None of them may ever be ``bad``; what each shows is pinned below.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import signal

from streaming.dsp.quality import BAD, GOOD, QualityMonitor, QualityReport

UV_PER_UNIT = {"bbcontractions": 1000.0, "biosppy_emg_1": 0.8, "uci_lower_limb_5Nmar": 1000.0}


def judge(x: np.ndarray, name: str, rate_hz: float) -> list[QualityReport]:
    """Reports for one recording ``(n, channels)`` at 1 kHz, run at ``rate_hz`` (upsampled as
    the data README says: 4096/1000 = 512/125)."""
    y = x * UV_PER_UNIT[name]
    if rate_hz != 1000.0:
        y = signal.resample_poly(y, 512, 125, axis=0, padtype="line")
    mon = QualityMonitor([f"{name}:{c}" for c in range(y.shape[1])], rate_hz)
    return [r for i in range(0, len(y), 128) for r in mon.process_all(y[i : i + 128])]


@pytest.fixture
def recordings(
    bb_contractions: np.ndarray, biosppy_emg: np.ndarray, uci_lower_limb: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "bbcontractions": bb_contractions,
        "biosppy_emg_1": biosppy_emg,
        "uci_lower_limb_5Nmar": uci_lower_limb,
    }


@pytest.mark.parametrize("rate_hz", [4096.0, 1000.0])
def test_no_real_recording_is_ever_bad(recordings: dict[str, np.ndarray], rate_hz: float) -> None:
    for name, x in recordings.items():
        reports = judge(x, name, rate_hz)
        assert len(reports) == len(x) // 500
        bad = [(r.sample_index / rate_hz, r.bad_channels) for r in reports if r.bad_channels]
        assert not bad, f"{name}: {bad[:3]}"


def test_the_biosppy_recording_is_good_throughout(biosppy_emg: np.ndarray) -> None:
    reports = judge(biosppy_emg, "biosppy_emg_1", 4096.0)
    assert {r.states[0] for r in reports} == {GOOD}
    # quiet stretches of a few uV, activations to ~100 uV RMS
    rms = np.array([r.metrics["rms_uv"][0] for r in reports])
    assert 2.0 < np.median(rms) < 8.0 and rms.max() > 50.0
    assert 2.0 < reports[-1].metrics["rest_rms_uv"][0] < 8.0


def test_biceps_motion_flags_fall_in_its_contractions(bb_contractions: np.ndarray) -> None:
    # README: contractions at about 9.9-19.4 s and 28.2-39.4 s (arm movement below 20 Hz)
    reports = judge(bb_contractions, "bbcontractions", 4096.0)
    t = np.array([r.sample_index / 4096.0 for r in reports])
    motion = np.array([any(x == "motion" for x in r.reasons[0]) for r in reports])
    assert motion.any()
    inside = ((t > 9.9) & (t < 19.4 + 1.5)) | ((t > 28.2) & (t < 39.4 + 1.5))
    assert not (motion & ~inside).any(), t[motion & ~inside]
    assert all(r.states[0] == GOOD for r, ti in zip(reports, t, strict=True) if ti < 9.9)
    # its resting level (x1000 as mV) is 10-20 uV: above the facial baseline limit of 8 uV
    assert reports[-1].states[0] != BAD
    assert "baseline" in reports[-1].reasons[0]


def test_gait_recording_shows_motion_on_three_legs_muscles(uci_lower_limb: np.ndarray) -> None:
    reports = judge(uci_lower_limb, "uci_lower_limb_5Nmar", 4096.0)
    reasons = [Counter(x for r in reports for x in r.reasons[c]) for c in range(4)]
    # RF, VM, ST: low-frequency movement artefacts of walking; BF: a high resting level
    assert reasons[0]["motion"] and reasons[2]["motion"] and reasons[3]["motion"]
    assert reasons[1]["baseline"] and not reasons[1]["motion"]
    assert all(set(r) <= {"motion", "baseline"} for r in reasons)
