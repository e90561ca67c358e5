"""Stateful online DSP stages: ``process(chunk)`` with state carried across chunks.

Each stage takes float chunks shaped ``(n_samples, n_channels)`` and returns float64 chunks;
feeding a recording in any chunking gives the same output as feeding it at once (filter state as
SOS ``zi`` or FIR history, float64 inside). Non-finite input samples (NaN/Inf from a dropped
amplifier packet) are replaced by the channel's last finite value before they reach any filter
state, and counted in ``bad_samples`` / ``last_bad`` so the pipeline can report them; the state is
never poisoned. A chunk with the wrong channel count raises :class:`StreamFormatError`.

Past the house's ~450 lines on purpose: the stages share one contract (chunk shape checks, the
non-finite guard, float64 state) and :class:`Chain` composes them; one module keeps that
contract in one place, as ``scipy.signal`` keeps its filters in one.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import signal

from streaming.dsp import delay, design, kernels
from streaming.errors import StreamFormatError

__all__ = [
    "EMG_BAND_CENTRE_HZ",
    "BipolarDerivation",
    "Chain",
    "FirFilter",
    "Rectify",
    "SlidingRms",
    "SosFilter",
    "Stage",
    "band_pass",
    "bessel_envelope_lowpass",
    "envelope_lowpass",
    "high_pass",
    "notch",
]

# sqrt(20 * 450): geometric centre of the facial-EMG band (van Boxtel 2001: 15-25 Hz to
# 400-500 Hz), where in-band group delays of high-pass stages are evaluated.
EMG_BAND_CENTRE_HZ = 94.9


class Stage:
    """Base: shape checks, non-finite replacement (hold last finite value) and counters."""

    name = "stage"

    def __init__(self, n_channels: int, n_out: int | None = None) -> None:
        if n_channels < 1:
            raise ValueError(f"{self.name}: n_channels={n_channels} must be >= 1")
        self.n_channels = int(n_channels)
        self.n_out = int(n_channels if n_out is None else n_out)
        self.bad_samples = 0
        self.last_bad = 0
        self._hold = np.full(self.n_channels, np.nan)

    @property
    def group_delay_s(self) -> float:
        """Delay (s) at the stage's reference frequency (DC for envelope smoothers)."""
        return 0.0

    # Linear description, for the delay over the envelope's band (streaming.dsp.delay). A
    # stage without one (rectification, bipolar derivation) passes every frequency unchanged.
    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Complex frequency response H(f) of the causal stage."""
        return np.ones(np.shape(freqs_hz), dtype=complex)

    def zero_phase_response(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Real response of the stage's offline (zero-phase) counterpart in
        :mod:`streaming.dsp.offline`."""
        return np.ones(np.shape(freqs_hz))

    def group_delay_curve_s(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Group delay (s) at each frequency."""
        return np.zeros(np.shape(freqs_hz))

    def reset(self) -> None:
        """Forget all state (as if freshly built); counters are kept."""
        self._hold = np.full(self.n_channels, np.nan)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Filter one chunk ``(n_samples, n_channels)``; returns ``(n_samples, n_out)`` float64."""
        x = self._prepare(chunk)
        if x.shape[0] == 0:
            return np.empty((0, self.n_out))
        return self._process(x)

    def _process(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_shape(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise StreamFormatError(
                f"{self.name}: expected a chunk of shape (n_samples, {self.n_channels}) "
                f"({self.n_channels} channels), got shape {x.shape}"
            )

    def _prepare(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk)
        self._check_shape(x)
        if x.dtype != np.float64:
            if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
                raise StreamFormatError(f"{self.name}: EMG chunk must be numeric, got {x.dtype}")
            x = x.astype(np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            x = self._fill(x, bad)
        else:
            self.last_bad = 0
        if x.shape[0]:
            self._hold = x[-1].copy()
        return x

    def _fill(self, x: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Replace bad samples by the previous finite value of the same channel."""
        n = x.shape[0]
        self.last_bad = int(bad.sum())
        self.bad_samples += self.last_bad
        idx = np.where(bad, -1, np.arange(n)[:, None])
        np.maximum.accumulate(idx, axis=0, out=idx)
        # before the first finite sample: the held value, else the chunk's first finite value
        start = self._hold.copy()
        for c in np.flatnonzero(~np.isfinite(start)):
            good = np.flatnonzero(~bad[:, c])
            start[c] = x[good[0], c] if good.size else 0.0
        cols = np.broadcast_to(np.arange(x.shape[1]), x.shape)
        return np.where(idx >= 0, x[np.maximum(idx, 0), cols], start[None, :])


class SosFilter(Stage):
    """Causal IIR filter in second-order sections with carried ``zi`` (``scipy.signal.sosfilt``).

    ``init="first"`` starts from the steady state for the first sample of each channel
    (``sosfilt_zi * x0``, as NeuroKit's ``butterworth_zi``; MNE-LSL scales by the first chunk's
    mean), so a DC offset causes no start-up transient; ``init="zero"`` starts from rest.
    ``delay_ref_hz`` is where the group delay is evaluated (0 for a low-pass; in-band for
    band-pass and notch).
    """

    name = "sos"

    def __init__(
        self,
        sos: np.ndarray,
        n_channels: int,
        rate_hz: float,
        *,
        delay_ref_hz: float = 0.0,
        init: str = "first",
        name: str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        super().__init__(n_channels)
        if init not in ("first", "zero"):
            raise ValueError(f"{self.name}: init={init!r} must be 'first' or 'zero'")
        self.sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
        self.rate_hz = float(rate_hz)
        self.delay_ref_hz = float(delay_ref_hz)
        self.init = init
        self._zi_unit = signal.sosfilt_zi(self.sos)[:, :, None]
        self._zi: np.ndarray | None = None
        self._delay_s = design.sos_group_delay_s(self.sos, self.delay_ref_hz, self.rate_hz)

    @property
    def group_delay_s(self) -> float:
        return self._delay_s

    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        _, h = signal.sosfreqz(self.sos, worN=np.atleast_1d(freqs_hz), fs=self.rate_hz)
        return h

    def zero_phase_response(self, freqs_hz: np.ndarray) -> np.ndarray:
        return np.abs(self.response(freqs_hz)) ** 2  # sosfiltfilt: forward and backward

    def group_delay_curve_s(self, freqs_hz: np.ndarray) -> np.ndarray:
        return design.sos_group_delay_curve_s(self.sos, freqs_hz, self.rate_hz)

    def reset(self) -> None:
        super().reset()
        self._zi = None

    def _process(self, x: np.ndarray) -> np.ndarray:
        if self._zi is None:
            x0 = x[0] if self.init == "first" else np.zeros(self.n_channels)
            self._zi = self._zi_unit * x0[None, None, :]
        y, self._zi = signal.sosfilt(self.sos, x, axis=0, zi=self._zi)
        return y


def band_pass(
    low_hz: float, high_hz: float, order: int, n_channels: int, rate_hz: float, init: str = "first"
) -> SosFilter:
    """Causal Butterworth band-pass; delay evaluated at the geometric band centre."""
    sos = design.butter_bandpass(low_hz, high_hz, order, rate_hz)
    ref = float(np.sqrt(low_hz * high_hz))
    return SosFilter(sos, n_channels, rate_hz, delay_ref_hz=ref, init=init, name="band_pass")


def high_pass(cutoff_hz: float, order: int, n_channels: int, rate_hz: float) -> SosFilter:
    """Causal Butterworth high-pass (drift/DC removal); delay evaluated in the EMG band."""
    sos = design.butter_highpass(cutoff_hz, order, rate_hz)
    ref = min(max(EMG_BAND_CENTRE_HZ, 2.0 * cutoff_hz), rate_hz / 4.0)
    return SosFilter(sos, n_channels, rate_hz, delay_ref_hz=ref, name="high_pass")


def notch(
    freq_hz: float, q: float, n_channels: int, rate_hz: float, max_hz: float | None = None
) -> SosFilter:
    """Power-line notch cascade (50 Hz, or 60 Hz, and harmonics up to ``max_hz``).

    Delay evaluated at 1.5x the mains frequency (75 Hz for 50 Hz mains), between the first two
    notches where EMG energy is high.
    """
    sos = design.notch_cascade(freq_hz, q, rate_hz, max_hz)
    return SosFilter(sos, n_channels, rate_hz, delay_ref_hz=1.5 * freq_hz, name="notch")


def envelope_lowpass(cutoff_hz: float, order: int, n_channels: int, rate_hz: float) -> SosFilter:
    """Linear-envelope smoother: causal Butterworth low-pass, delay at DC."""
    sos = design.butter_lowpass(cutoff_hz, order, rate_hz)
    return SosFilter(sos, n_channels, rate_hz, delay_ref_hz=0.0, name="envelope_lowpass")


def bessel_envelope_lowpass(
    cutoff_hz: float, order: int, n_channels: int, rate_hz: float, norm: str = "phase"
) -> SosFilter:
    """Linear-envelope smoother with a Bessel low-pass: nearly constant delay over the
    envelope's band (a Butterworth's grows from DC to its corner)."""
    sos = design.bessel_lowpass(cutoff_hz, order, rate_hz, norm)
    return SosFilter(sos, n_channels, rate_hz, delay_ref_hz=0.0, name="envelope_lowpass")


class Rectify(Stage):
    """Full-wave rectification (``abs``)."""

    name = "rectify"

    def _process(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x)


class FirFilter(Stage):
    """Causal FIR with carried history (``lfilter`` state = the last ``numtaps - 1`` inputs).

    Linear-phase taps delay every frequency by ``(numtaps - 1) / 2`` samples. ``init="first"``
    fills the history with the first sample (no start-up step for a DC offset).
    """

    name = "fir"

    def __init__(
        self, taps: np.ndarray, n_channels: int, rate_hz: float, *, init: str = "first"
    ) -> None:
        super().__init__(n_channels)
        self.taps = np.asarray(taps, dtype=np.float64)
        self.rate_hz = float(rate_hz)
        self.init = init
        self._zi_unit = signal.lfilter_zi(self.taps, [1.0])[:, None]
        self._zi: np.ndarray | None = None

    @property
    def group_delay_s(self) -> float:
        return design.fir_group_delay_s(self.taps.size, self.rate_hz)

    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        _, h = signal.freqz(self.taps, worN=np.atleast_1d(freqs_hz), fs=self.rate_hz)
        return h

    def zero_phase_response(self, freqs_hz: np.ndarray) -> np.ndarray:
        # centred convolution: the causal response with its linear phase removed (real, signed)
        f = np.atleast_1d(freqs_hz)
        return np.real(self.response(f) * np.exp(2j * np.pi * f * self.group_delay_s))

    def group_delay_curve_s(self, freqs_hz: np.ndarray) -> np.ndarray:
        return np.full(np.shape(freqs_hz), self.group_delay_s)  # symmetric taps: linear phase

    def reset(self) -> None:
        super().reset()
        self._zi = None

    def _process(self, x: np.ndarray) -> np.ndarray:
        if self._zi is None:
            x0 = x[0] if self.init == "first" else np.zeros(self.n_channels)
            self._zi = self._zi_unit * x0[None, :]
        y, self._zi = signal.lfilter(self.taps, [1.0], x, axis=0, zi=self._zi)
        return y


class SlidingRms(Stage):
    """Causal moving RMS over the last ``window`` samples (history carried across chunks).

    Output sample n is sqrt(mean(x[n-window+1 .. n]^2)): a centred RMS delayed by
    ``(window - 1) / 2`` samples. Before ``window`` samples have arrived the missing past counts
    as zeros (the value ramps up during the first window). The squares live in a ring buffer
    with a running sum (O(chunk) per call), re-summed exactly once per window so rounding never
    accumulates.
    """

    name = "sliding_rms"

    def __init__(self, window: int, n_channels: int, rate_hz: float) -> None:
        super().__init__(n_channels)
        if window < 1:
            raise ValueError(f"sliding_rms window={window} samples must be >= 1")
        self.window = int(window)
        self.rate_hz = float(rate_hz)
        self.reset()

    @property
    def group_delay_s(self) -> float:
        return (self.window - 1) / 2.0 / self.rate_hz

    def zero_phase_response(self, freqs_hz: np.ndarray) -> np.ndarray:
        """The moving mean of the squares, centred: the Dirichlet kernel of ``window`` samples
        (the square root is memoryless and adds no delay)."""
        w_half = np.pi * np.atleast_1d(np.asarray(freqs_hz, dtype=float)) / self.rate_hz
        num, den = np.sin(self.window * w_half), self.window * np.sin(w_half)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.abs(den) > 1e-12, num / den, 1.0)

    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
        return self.zero_phase_response(f) * np.exp(-2j * np.pi * f * self.group_delay_s)

    def group_delay_curve_s(self, freqs_hz: np.ndarray) -> np.ndarray:
        return np.full(np.shape(freqs_hz), self.group_delay_s)

    def reset(self) -> None:
        super().reset()
        self._ring = np.zeros((self.window, self.n_channels))
        self._pos = 0
        self._sum = np.zeros(self.n_channels)

    def _process(self, x: np.ndarray) -> np.ndarray:
        sq = x * x
        n, w = sq.shape[0], self.window
        total = np.empty_like(sq)
        i = 0
        while i < n:  # pieces that do not wrap around the ring
            k = min(n - i, w - self._pos)
            piece = sq[i : i + k]
            delta = np.cumsum(piece - self._ring[self._pos : self._pos + k], axis=0)
            total[i : i + k] = self._sum + delta
            self._sum = self._sum + delta[-1]
            self._ring[self._pos : self._pos + k] = piece
            self._pos += k
            if self._pos == w:
                self._pos = 0
                self._sum = self._ring.sum(axis=0)
            i += k
        return np.sqrt(np.maximum(total / w, 0.0))


class BipolarDerivation(Stage):
    """Bipolar channels as differences of labelled electrodes: ``out = x[plus] - x[minus]``.

    ``pairs`` is a list of ``(name, plus, minus)``; ``labels`` are the output names. This is how
    the Fridlund montage is formed from monopolar recordings (MMM README, step 3).
    """

    name = "bipolar"

    def __init__(self, input_labels: Sequence[str], pairs: Sequence[tuple[str, str, str]]) -> None:
        labels = list(input_labels)
        if not pairs:
            raise ValueError("bipolar derivation needs at least one (name, plus, minus) pair")
        index = {lab: i for i, lab in enumerate(labels)}
        missing = sorted({e for _, p, m in pairs for e in (p, m) if e not in index})
        if missing:
            raise StreamFormatError(
                f"bipolar derivation: electrode(s) {missing} not among the stream's channels "
                f"{labels}; check the electrode scheme against the EMG stream's labels"
            )
        super().__init__(len(labels), len(pairs))
        self.input_labels = labels
        self.labels = [name for name, _, _ in pairs]
        self.plus = np.array([index[p] for _, p, _ in pairs])
        self.minus = np.array([index[m] for _, _, m in pairs])

    def _process(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.plus] - x[:, self.minus]


class Chain(Stage):
    """Stages applied in order; bad-sample counts add up.

    From the second chunk on (once every filter's state is initialised from its first sample),
    each run of consecutive :class:`SosFilter` and :class:`Rectify` stages goes through one
    compiled kernel (:mod:`streaming.dsp.kernels`), the same arithmetic as the stages' own
    ``sosfilt`` calls in one pass: the output is bit-for-bit the per-stage path's, at a fraction
    of the Python calls per chunk. ``fuse=False`` (or no numba) keeps the per-stage path.

    Its delay is the delay over the envelope's band (:attr:`band_delay_s`, computed by
    :mod:`streaming.dsp.delay`), what a consumer compensates when it aligns the envelope with
    another signal;
    ``dc_delay_s`` is the plain sum of the stages' delays at their reference frequencies.
    """

    name = "EMG feature chain"

    def __init__(self, stages: Sequence[Stage], *, fuse: bool = True) -> None:
        if not stages:
            raise ValueError("a chain needs at least one stage")
        for a, b in itertools.pairwise(stages):
            if a.n_out != b.n_channels:
                raise ValueError(
                    f"chain: {a.name} gives {a.n_out} channels but {b.name} takes {b.n_channels}"
                )
        self.stages = list(stages)
        super().__init__(stages[0].n_channels, stages[-1].n_out)
        rates = [s.rate_hz for s in self._flat_stages() if hasattr(s, "rate_hz")]
        self.rate_hz: float | None = rates[0] if rates else None
        self.fuse = fuse
        self._plan: list[Stage | _FusedRun] | None = None  # set once the states are initialised

    @property
    def group_delay_s(self) -> float:
        """The delay the chain's envelope lags its input by: :attr:`band_delay_s`."""
        return self.band_delay_s

    @functools.cached_property
    def band_delay_s(self) -> float:
        """Delay (s) over the envelope's band: the carrier stages' (before rectification)
        energy-weighted group delay over 20-450 Hz plus the envelope stages' cross-correlation
        lag over 0-5 Hz (definition: :mod:`streaming.dsp.delay`)."""
        stages = self._flat_stages()
        if self.rate_hz is None:
            return 0.0
        # the envelope starts after rectification, or at a sliding RMS (squares, then smooths)
        carrier, envelope = stages, []
        for i, s in enumerate(stages):
            if isinstance(s, Rectify | SlidingRms):
                carrier, envelope = stages[:i], stages[i + int(isinstance(s, Rectify)) :]
                break
        return delay.carrier_delay_s(carrier, self.rate_hz) + delay.envelope_delay_s(envelope)

    def _flat_stages(self) -> list[Stage]:
        out: list[Stage] = []
        for s in self.stages:
            out.extend(s._flat_stages() if isinstance(s, Chain) else [s])
        return out

    @property
    def dc_delay_s(self) -> float:
        """Sum of the stages' delays at their reference frequencies (DC for the envelope
        low-pass): the envelope's delay for infinitely slow changes only."""
        return float(sum(s.group_delay_s for s in self.stages))

    @property
    def delays_s(self) -> dict[str, float]:
        """Per-stage group delay, keyed ``"<index>:<name>"``."""
        return {f"{i}:{s.name}": s.group_delay_s for i, s in enumerate(self.stages)}

    def reset(self) -> None:
        for s in self.stages:
            s.reset()
        self._plan = None

    def process(self, chunk: np.ndarray) -> np.ndarray:
        y = np.asarray(chunk)
        self._check_shape(y)
        plan = self._plan
        if plan is None:
            for s in self.stages:
                y = s.process(y)
            if self.fuse and y.shape[0]:
                self._plan = self._fused_plan()
        else:
            for step in plan:
                y = step.process(y)
        self.last_bad = sum(s.last_bad for s in self.stages)
        self.bad_samples = sum(s.bad_samples for s in self.stages)
        return y

    def _fused_plan(self) -> list[Stage | _FusedRun] | None:
        """The stages with each run of initialised SOS filters and rectifications replaced by
        one :class:`_FusedRun`; None where nothing fuses or numba is missing."""
        kernel = kernels.load()
        if kernel is None:
            return None
        plan: list[Stage | _FusedRun] = []
        run: list[Stage] = []

        def close_run() -> None:
            if any(isinstance(r, SosFilter) for r in run):
                plan.append(_FusedRun(run, kernel))
            else:
                plan.extend(run)
            run.clear()

        for stage in self.stages:
            if isinstance(stage, Rectify) or (
                isinstance(stage, SosFilter) and stage._zi is not None
            ):
                run.append(stage)
            else:
                close_run()
                plan.append(stage)
        close_run()
        return plan if any(isinstance(p, _FusedRun) for p in plan) else None


class _FusedRun:
    """Consecutive :class:`SosFilter` / :class:`Rectify` stages run by one kernel call.

    The filters' states become views into one ``(S, 2, C)`` array that the kernel updates in
    place, so each stage still holds its own state. Non-finite input is filled as the run's
    first stage fills it (its hold, its counters), then the run goes on: the later stages see
    finite samples only, as in the per-stage path.
    """

    def __init__(self, stages: Sequence[Stage], kernel: Callable[..., int]) -> None:
        self.stages = list(stages)
        self.first = self.stages[0]
        self.n_channels = self.first.n_channels
        self._kernel = kernel
        sos, zi, rect = [], [], [False]
        for stage in self.stages:
            if isinstance(stage, Rectify):
                rect[-1] = True
            else:
                assert isinstance(stage, SosFilter) and stage._zi is not None
                sos.append(stage.sos)
                zi.append(stage._zi)
                rect += [False] * stage.sos.shape[0]
        self.sos = np.ascontiguousarray(np.concatenate(sos))
        self.zi = np.ascontiguousarray(np.concatenate(zi))
        self.rect = np.array(rect, dtype=np.bool_)
        i = 0
        for stage in self.stages:
            if isinstance(stage, SosFilter):
                k = stage.sos.shape[0]
                stage._zi = self.zi[i : i + k]  # a view: the stage sees the kernel's updates
                i += k
        self._others = self.stages[1:]

    def process(self, x: np.ndarray) -> np.ndarray:
        first = self.first
        if x.dtype != np.float64 and x.dtype != np.float32:
            x = first._prepare(x)  # converts (or refuses) and fills gaps
        elif not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        y = np.empty(x.shape, dtype=np.float64)
        if x.shape[0] == 0:
            first.last_bad = 0
            return y
        if self._kernel(x, self.sos, self.zi, self.rect, y, first._hold):
            x = first._prepare(x)  # fill and count as the first stage does, then again
            self._kernel(x, self.sos, self.zi, self.rect, y, first._hold)
        else:
            first.last_bad = 0
        for stage in self._others:
            stage.last_bad = 0
        return y
