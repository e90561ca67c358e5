"""Shared signals for the DSP specifications: synthetic EMG bursts and the real recordings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import signal

FS = 4096.0


def shaped_noise(rng: np.random.Generator, n: int, n_channels: int, fs: float = FS) -> np.ndarray:
    """White noise band-limited to 20-450 Hz (zero-phase), unit RMS per channel."""
    sos = signal.butter(4, [20, 450], btype="bandpass", output="sos", fs=fs)
    x = signal.sosfiltfilt(sos, rng.standard_normal((n, n_channels)), axis=0)
    return x / x.std(axis=0, keepdims=True)


def burst_envelope(
    t: np.ndarray, bursts: list[tuple[float, float]], ramp_s: float = 0.2
) -> np.ndarray:
    """Trapezoidal amplitude: 0 at rest, 1 during each (start, end) burst, linear ramps."""
    a = np.zeros_like(t)
    for start, end in bursts:
        up = np.clip((t - start) / ramp_s, 0.0, 1.0)
        down = np.clip((end + ramp_s - t) / ramp_s, 0.0, 1.0)
        a = np.maximum(a, np.minimum(up, down))
    return a


def burst_record(
    seconds: float = 20.0,
    n_channels: int = 2,
    seed: int = 0,
    bursts: list[tuple[float, float]] | None = None,
    peak_uv: float = 61.0,
    hum_uv: float = 20.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Research note 3.4 record: shaped noise x bursts (200 ms ramps) + 50 Hz hum.

    Returns (t_s, x_uv (n, ch), amplitude (n,)). The noise is scaled so that the full-wave
    rectified mean (the linear envelope) during a burst is about ``peak_uv``.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    bursts = bursts if bursts is not None else [(2.0, 5.0), (8.0, 10.0), (12.5, 16.0)]
    amp = burst_envelope(t, bursts)
    # mean |x| of unit-variance Gaussian noise is sqrt(2/pi)
    noise = shaped_noise(rng, n, n_channels) * (peak_uv / np.sqrt(2 / np.pi))
    hum = hum_uv * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi, n_channels)[:, None]).T
    return t, noise * amp[:, None] + hum, amp


def random_chunks(n: int, rng: np.random.Generator, low: int = 1, high: int = 300) -> list[slice]:
    """Consecutive slices of random length in [low, high] covering range(n)."""
    out, i = [], 0
    while i < n:
        k = int(rng.integers(low, high + 1))
        out.append(slice(i, min(n, i + k)))
        i += k
    return out


def run_chunked(stage, x: np.ndarray, slices: list[slice]) -> np.ndarray:
    return np.concatenate([stage.process(x[s]) for s in slices], axis=0)


@pytest.fixture
def biosppy_emg(shared_data: Path) -> np.ndarray:
    """BioSPPy example EMG: 1 kHz, 12-bit counts with a ~2040 mid-scale offset, (n, 1)."""
    return np.loadtxt(shared_data / "emg" / "biosppy_emg_1.txt", comments="#")[:, None]


@pytest.fixture
def bb_contractions(shared_data: Path) -> np.ndarray:
    """Biceps brachii, two contractions, 1 kHz, (n, 1), unit unknown with a DC offset."""
    return np.loadtxt(shared_data / "emg" / "bbcontractions.csv")[:, None]


def load_uci_lower_limb(path: Path) -> np.ndarray:
    """UCI lower-limb gait file: the 4 EMG columns (mV) of the rows with exactly 5 numbers."""
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 5:
            try:
                rows.append([float(v) for v in fields])
            except ValueError:  # the header's column names
                continue
    return np.array(rows)[:, :4]


@pytest.fixture
def uci_lower_limb(shared_data: Path) -> np.ndarray:
    """Four leg muscles during gait, 1 kHz, mV, (6563, 4) (shared/data/emg/README.md)."""
    return load_uci_lower_limb(shared_data / "emg" / "uci_lower_limb_5Nmar.txt")


@pytest.fixture
def real_recordings(
    biosppy_emg: np.ndarray, bb_contractions: np.ndarray, uci_lower_limb: np.ndarray
) -> dict[str, np.ndarray]:
    """Every channel of the three real recordings, 1 kHz, keyed ``file:channel``."""
    out = {"bbcontractions:0": bb_contractions[:, 0], "biosppy_emg_1:0": biosppy_emg[:, 0]}
    out |= {f"uci_lower_limb_5Nmar:{c}": uci_lower_limb[:, c] for c in range(4)}
    return out


@pytest.fixture
def sig() -> SimpleNamespace:
    """The signal helpers above (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        FS=FS,
        shaped_noise=shaped_noise,
        burst_envelope=burst_envelope,
        burst_record=burst_record,
        random_chunks=random_chunks,
        run_chunked=run_chunked,
    )
