"""Online (causal) output agrees with the paper's offline method once its delay is compensated."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest

from streaming.dsp.offline import (
    frame_times,
    interp_at,
    offline_envelope,
    offline_frames,
    resample_to_frames,
)
from streaming.pipeline.features import build_chain

FS = 4096.0


def xcorr_lag_s(online: np.ndarray, offline: np.ndarray, max_lag: int = 2000) -> float:
    a, b = online - online.mean(), offline - offline.mean()
    core = slice(max_lag, len(b) - max_lag)
    lags = np.arange(-max_lag, max_lag + 1)
    cc = [np.dot(a[max_lag + k : len(a) - max_lag + k], b[core]) for k in lags]
    return lags[int(np.argmax(cc))] / FS


@pytest.mark.parametrize(("feature", "edge_frames"), [("low_latency", 3), ("mmm", 30)])
def test_online_matches_offline_reference_after_delay_compensation(
    sig, feature: str, edge_frames: int
) -> None:
    _, x, _ = sig.burst_record(seconds=20.0, n_channels=2, seed=7)
    chain = build_chain(feature, 2)
    online = chain.process(x)
    t_frames, frames = offline_frames(x, chain, frame_rate_hz=30.0)
    assert frames.shape == (600, 2)
    t_samples = np.arange(x.shape[0]) / FS
    inner = slice(edge_frames, -edge_frames)  # resample wraps at the ends; RMS fills for 0.5 s
    shifted = interp_at(t_frames + chain.group_delay_s, t_samples, online)
    unshifted = interp_at(t_frames, t_samples, online)
    for c in range(2):
        r = np.corrcoef(shifted[inner, c], frames[inner, c])[0, 1]
        r_raw = np.corrcoef(unshifted[inner, c], frames[inner, c])[0, 1]
        assert r >= 0.99
        assert r > r_raw  # the reported delay is the right direction and size
    # the lag measured by cross-correlation agrees with the reported delay
    lag_s = xcorr_lag_s(online[:, 0], offline_envelope(x, chain)[:, 0])
    assert lag_s == pytest.approx(chain.group_delay_s, abs=0.010)


def test_online_gain_exceeds_zero_phase_gain_by_about_ten_percent(sig) -> None:
    # zero-phase filtering squares |H|: band edges at -6 dB pass less EMG power (note 3.4: 1.117x)
    _, x, _ = sig.burst_record(seconds=20.0, n_channels=2, seed=7)
    chain = build_chain("low_latency", 2)
    online = chain.process(x)
    offline = offline_envelope(x, chain)
    ratio = online[4096:-4096].mean() / offline[4096:-4096].mean()
    assert 1.05 < ratio < 1.15


def test_fourier_resample_wraps_when_the_record_ends_mid_burst(sig) -> None:
    # why edge frames are excluded from comparisons: frame 0 sees the end of the record
    _, x, _ = sig.burst_record(seconds=20.0, n_channels=1, seed=7, bursts=[(2, 5), (17, 21)])
    chain = build_chain("low_latency", 1)
    env = offline_envelope(x, chain)
    t_frames, frames = offline_frames(x, chain)
    true = interp_at(t_frames, np.arange(x.shape[0]) / FS, env)
    assert abs(frames[0, 0] - true[0, 0]) > 10.0
    assert np.sqrt(np.mean((frames[3:-3, 0] - true[3:-3, 0]) ** 2)) < 0.5


def test_frame_times_are_where_resample_puts_its_samples() -> None:
    t = frame_times(4096 * 2, FS, 60)
    assert t[1] == pytest.approx(1 / 30) and t.shape == (60,)
    ramp = np.sin(2 * np.pi * 1.0 * np.arange(8192) / FS)[:, None]
    out = resample_to_frames(ramp, 60)
    np.testing.assert_allclose(out[:, 0], np.sin(2 * np.pi * t), atol=1e-9)


def test_the_dsp_layer_imports_nothing_from_the_layers_above_it() -> None:
    # dsp is the lower layer: streaming.pipeline.features builds on it, never the reverse (no cycle)
    code = (
        "import sys, streaming.dsp, streaming.dsp.offline, streaming.dsp.delay;"
        "print(sorted(m for m in sys.modules if m.startswith('streaming')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    assert {m for m in loaded if not m.startswith("streaming.dsp")} <= {
        "streaming",
        "streaming.errors",
    }
