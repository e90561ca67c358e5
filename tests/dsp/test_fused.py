"""The fused chain (one compiled pass per run of SOS filters and rectifications) computes exactly
what the per-stage path computes, for any chunking, dtype and gap pattern (issue 20, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from scipy import signal

from streaming.dsp import Chain, Rectify, design, kernels
from streaming.dsp.stages import _FusedRun
from streaming.errors import StreamFormatError
from streaming.pipeline.features import build_chain

FS = 4096.0


def per_stage(feature: str, n_channels: int, fs: float = FS) -> Chain:
    """Today's path: every stage its own ``process`` (``sosfilt``, ``abs``, ...)."""
    return Chain(build_chain(feature, n_channels, fs).stages, fuse=False)


def emg(n: int, n_channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    hum = 20 * np.sin(2 * np.pi * 50 * t)[:, None]
    return rng.standard_normal((n, n_channels)) * 50 + 300 + hum


def run(chain: Chain, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i = [], 0
    for k in sizes:
        out.append(chain.process(x[i : i + k]))
        i += k
    out.append(chain.process(x[i:]))
    return np.concatenate(out)


def test_the_kernel_is_available_and_the_chain_uses_it_from_the_second_chunk() -> None:
    assert kernels.load() is not None  # numba is a dependency: the fast path must be there
    chain = build_chain("low_latency", 4)
    assert chain._plan is None
    chain.process(emg(32, 4, 0))
    assert chain._plan is not None
    assert [type(p) for p in chain._plan] == [_FusedRun]  # band-pass, notch, abs, low-pass
    mmm = build_chain("mmm", 4)
    mmm.process(emg(32, 4, 0))
    assert mmm._plan is not None
    assert [type(p).__name__ for p in mmm._plan] == ["_FusedRun", "FirFilter", "SlidingRms"]


@pytest.mark.parametrize("feature", ["low_latency", "mmm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=hst.lists(hst.integers(0, 300), min_size=1, max_size=30),
    n_channels=hst.integers(1, 9),
    seed=hst.integers(0, 2**16),
)
def test_outputs_equal_the_per_stage_path_for_any_chunking(
    feature: str, dtype: type, sizes: list[int], n_channels: int, seed: int
) -> None:
    x = emg(sum(sizes) + 64, n_channels, seed).astype(dtype)
    fused = run(build_chain(feature, n_channels), x, sizes)
    reference = run(per_stage(feature, n_channels), x, sizes)
    np.testing.assert_array_equal(fused, reference)  # same operations in the same order


@settings(max_examples=25, deadline=None)
@given(
    sizes=hst.lists(hst.integers(1, 100), min_size=2, max_size=20),
    seed=hst.integers(0, 2**16),
    bad_fraction=hst.sampled_from([0.0, 0.01, 0.3, 1.0]),
)
def test_gaps_are_filled_and_counted_as_the_per_stage_path_does(
    sizes: list[int], seed: int, bad_fraction: float
) -> None:
    x = emg(sum(sizes) + 40, 3, seed)
    rng = np.random.default_rng(seed)
    mask = rng.random(x.shape) < bad_fraction
    x[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
    fused, reference = build_chain("low_latency", 3), per_stage("low_latency", 3)
    i = 0
    for k in [*sizes, x.shape[0] - sum(sizes)]:
        np.testing.assert_array_equal(fused.process(x[i : i + k]), reference.process(x[i : i + k]))
        assert (fused.last_bad, fused.bad_samples) == (reference.last_bad, reference.bad_samples)
        i += k
    assert np.isfinite(fused.process(emg(64, 3, 1))).all()  # the state was never poisoned


def test_the_kernel_source_is_scipys_sosfilt_bit_for_bit() -> None:
    sos = np.concatenate(
        [design.butter_bandpass(20, 450, 2, FS), design.notch_cascade(50, 30, FS, 450)]
    )
    x = emg(200, 5, 7)
    zi = signal.sosfilt_zi(sos)[:, :, None] * x[0]
    ref, zf = signal.sosfilt(sos, x, axis=0, zi=zi)
    for kernel in (kernels.sos_run_py, kernels.load()):
        assert kernel is not None
        y, z, hold = np.empty_like(x), zi.copy(), np.zeros(5)
        assert kernel(x, sos, z, np.zeros(sos.shape[0] + 1, np.bool_), y, hold) == 0
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(z, zf)
        np.testing.assert_array_equal(hold, x[-1])


def test_a_chunk_with_gaps_leaves_the_kernel_state_untouched() -> None:
    kernel = kernels.load()
    assert kernel is not None
    sos = design.butter_lowpass(6, 2, FS)
    x = emg(10, 2, 3)
    x[4, 1] = np.nan
    zi, y, hold = np.ones((1, 2, 2)), np.zeros((10, 2)), np.full(2, 5.0)
    assert kernel(x, sos, zi, np.array([True, False]), y, hold) == 1
    assert (zi == 1).all() and (hold == 5).all()


def test_integer_empty_and_non_contiguous_chunks_after_the_first() -> None:
    fused, reference = build_chain("low_latency", 2), per_stage("low_latency", 2)
    x = (emg(400, 4, 5)).astype(np.int32)
    for chunk in (x[:50, :2], x[50:60, :2], x[60:60, :2], x[60:200, ::2], x[200:, 1:3]):
        np.testing.assert_array_equal(fused.process(chunk), reference.process(chunk))
    with pytest.raises(StreamFormatError, match="numeric"):
        fused.process(np.array([["a", "b"]]))
    with pytest.raises(StreamFormatError, match="2 channels"):
        fused.process(np.zeros((4, 3)))


def test_reset_returns_to_the_per_stage_start_and_fuses_again() -> None:
    x = emg(1000, 2, 9)
    chain = build_chain("low_latency", 2)
    first = run(chain, x, [32] * 20)
    chain.reset()
    assert chain._plan is None
    np.testing.assert_array_equal(run(chain, x, [32] * 20), first)


def test_a_run_of_rectifications_alone_is_not_fused() -> None:
    chain = Chain([Rectify(2), Rectify(2)])
    chain.process(np.ones((3, 2)))
    assert chain._plan is None
