"""Per-channel EMG signal quality, online: which electrode to fix, and which stretch to distrust.

:class:`QualityMonitor` reads the raw EMG (microvolts, before the envelope) in chunks of any size,
cuts it into blocks of ``update_s`` (0.5 s) and after each block publishes a
:class:`QualityReport`: per channel a state ``good`` / ``check`` / ``bad``, the reasons, and the
metrics behind them over the last ``window_s`` (1 s). Everything is causal and computed for all
channels at once; the analysis sees whole blocks only, so any chunking of one signal gives the same
reports (filter states carried across blocks as SOS ``zi``).

Per block, per channel:

- one Hann-windowed FFT gives the powers of the EMG band (20-450 Hz), of the mains lines (50 or
  60 Hz and harmonics, each line's power less the local floor of the bins beside it), of the band
  below 20 Hz (motion) and of the 500-1000 Hz noise band above the EMG (open input);
- counts of NaN samples, of samples repeating their predecessor (stuck), of samples at the
  amplifier's range (railed; without a declared range: repeated extreme values, i.e. clipping);
- a 1-20 Hz band-pass (motion spikes: onsets above ``spike_uv``) and a 100 Hz high-pass whose
  channel x channel Gram matrix gives each neighbour pair's high-frequency correlation (bridging);
- the EMG-band power of rest blocks, kept for ``baseline_s``: a low percentile of it is the rest
  baseline (rest = no protocol movement, :meth:`QualityMonitor.set_movement`; without movement
  markers every block counts, so the percentile picks the lowest-activity windows).

Reasons (stable strings): ``nan``, ``flat``, ``railed``, ``stuck``, ``noise`` (broadband power far
above the neighbours), ``mains``, ``bridged:<partner>``, ``motion``, ``baseline`` (rest RMS high),
``silent`` (no activity in a movement that drives the channel's muscle). Thresholds and their
sources: :mod:`streaming.dsp.quality_config` and ``configs/quality.toml``.

Hysteresis: a level is entered when its metric passes the threshold in one window and left when
the metric is back past the threshold by the limit's ``release`` margin. With 1 s windows updated
every 0.5 s a fault is flagged at most ~1.5 s after it starts and cleared at most ~1.5 s after it
ends (plus the decay of the filters: tens of ms).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal

from streaming.dsp import design
from streaming.dsp.quality_config import Limit, QualityConfig
from streaming.errors import StreamFormatError

__all__ = [
    "BAD",
    "CHECK",
    "GOOD",
    "METRICS",
    "REASONS",
    "STATES",
    "QualityMonitor",
    "QualityReport",
    "channel_targets",
    "nearest_neighbours",
]

GOOD, CHECK, BAD = "good", "check", "bad"
STATES = (GOOD, CHECK, BAD)  # index = level
# reason order in a report (most telling first); "bridged" is reported as "bridged:<partner>"
REASONS = (
    "nan",
    "flat",
    "railed",
    "stuck",
    "noise",
    "mains",
    "bridged",
    "motion",
    "baseline",
    "silent",
)
METRICS = (
    "mains_db",  # mains lines' power against the EMG band's (dB)
    "mains_uv",  # RMS of the mains lines (uV)
    "rms_uv",  # EMG-band RMS over the window, mains lines removed (uV)
    "rest_rms_uv",  # rest baseline RMS (uV); NaN until a rest block was seen
    "lf_fraction",  # power below 20 Hz / (that + EMG band)
    "spike_count",  # motion spikes in the window
    "nan_fraction",
    "stuck_fraction",  # samples equal to their predecessor
    "railed_fraction",  # samples at the range (or repeated extremes)
    "noise_db",  # noise-band power against the neighbours' median (dB); NaN without neighbours
    "bridge_corr",  # largest HF correlation with a similar-level neighbour
    "activity_snr_db",  # EMG-band power against the rest baseline (dB)
    "expected_level",  # what the current movement asks of the channel's muscle (0..1)
)
_DB_FLOOR = -60.0  # dB values of a zero power
# reasons whose blocks do not feed the rest baseline (their power is not the electrode's rest)
_NOT_BASELINE = ("nan", "flat", "railed", "stuck", "noise", "bridged", "motion")


@dataclass(frozen=True)
class QualityReport:
    """Quality of every channel after one block.

    ``t_lsl``: LSL time of the block's last sample (None when the caller gave no times);
    ``sample_index``: index of the sample after the block (samples since the monitor started).
    ``states[i]``, ``reasons[i]`` and ``metrics[name][i]`` belong to ``channels[i]``.
    """

    t_lsl: float | None
    sample_index: int
    channels: tuple[str, ...]
    states: tuple[str, ...]
    reasons: tuple[tuple[str, ...], ...]
    metrics: Mapping[str, tuple[float, ...]]
    mains_hz: float
    movement: str | None = None
    bridge_partner: tuple[str, ...] = field(default=())  # "" where none

    def state(self, label: str) -> str:
        return self.states[self.channels.index(label)]

    def reasons_of(self, label: str) -> tuple[str, ...]:
        return self.reasons[self.channels.index(label)]

    def metric(self, name: str, label: str) -> float:
        return self.metrics[name][self.channels.index(label)]

    @property
    def bad_channels(self) -> list[str]:
        return [c for c, s in zip(self.channels, self.states, strict=True) if s == BAD]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of lists, floats and strings (msgpack / JSON; NaN where unknown)."""
        return {
            "t_lsl": self.t_lsl,
            "sample_index": self.sample_index,
            "channels": list(self.channels),
            "states": list(self.states),
            "reasons": [list(r) for r in self.reasons],
            "metrics": {k: [float(v) for v in vals] for k, vals in self.metrics.items()},
            "mains_hz": self.mains_hz,
            "movement": self.movement,
            "bridge_partner": list(self.bridge_partner),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReport:
        return cls(
            t_lsl=None if data["t_lsl"] is None else float(data["t_lsl"]),
            sample_index=int(data["sample_index"]),
            channels=tuple(data["channels"]),
            states=tuple(data["states"]),
            reasons=tuple(tuple(r) for r in data["reasons"]),
            metrics={k: tuple(float(x) for x in v) for k, v in data["metrics"].items()},
            mains_hz=float(data["mains_hz"]),
            movement=data.get("movement"),
            bridge_partner=tuple(data.get("bridge_partner", ())),
        )


def nearest_neighbours(
    labels: Sequence[str], positions: np.ndarray, k: int = 4
) -> dict[str, list[str]]:
    """The ``k`` channels nearest each channel on the face (``ElectrodeScheme.positions``:
    ``(n, 2)``, configs/electrodes), nearest first."""
    xy = np.asarray(positions, dtype=np.float64)
    if xy.shape != (len(labels), 2):
        raise ValueError(f"positions shape {xy.shape} != ({len(labels)}, 2)")
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : min(k, len(labels) - 1)]
    return {lab: [labels[j] for j in row] for lab, row in zip(labels, order, strict=True)}


def channel_targets(
    movement_levels: Mapping[str, Mapping[str, float]], muscles: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per movement, the level (0..1) it drives each channel's muscle at: ``movement_levels``
    is ``{movement: {muscle: level}}`` (configs/movements.toml, e.g. via
    ``streaming.pipeline.biofeedback.load_movement_levels``), ``muscles`` the muscle under each
    channel (``ElectrodeScheme.muscles``)."""
    return {
        name: np.array([float(levels.get(m, 0.0)) for m in muscles], dtype=np.float64)
        for name, levels in movement_levels.items()
    }


def _levels(metric: np.ndarray, limit: Limit, current: np.ndarray) -> np.ndarray:
    """Level 0/1/2 per channel from ``metric`` with hysteresis: a level already held (``current``)
    stays while the metric has not come back past its threshold by ``limit.release``. NaN metrics
    keep nothing."""
    out = np.zeros(metric.shape, dtype=np.int8)
    sign = -1.0 if limit.below else 1.0
    m = sign * metric
    with np.errstate(invalid="ignore"):
        for level, threshold in ((1, limit.check), (2, limit.bad)):
            if threshold is None:
                continue
            t = sign * threshold
            on = (m > t) | ((current >= level) & (m > t - limit.release))
            out[on] = level
    return out


class _Hold:
    """Last finite value per channel: fills NaN samples so no filter state is poisoned."""

    def __init__(self, n_channels: int) -> None:
        self.last = np.full(n_channels, np.nan)

    def fill(self, x: np.ndarray, finite: np.ndarray) -> np.ndarray:
        if finite.all():
            self.last = x[-1].copy()
            return x
        n = x.shape[0]
        idx = np.where(finite, np.arange(n)[:, None], -1)
        np.maximum.accumulate(idx, axis=0, out=idx)
        first = np.where(finite.any(axis=0), x[np.argmax(finite, axis=0), np.arange(x.shape[1])], 0)
        start = np.where(np.isfinite(self.last), self.last, first)
        cols = np.broadcast_to(np.arange(x.shape[1]), x.shape)
        y = np.where(idx >= 0, x[np.maximum(idx, 0), cols], start[None, :])
        self.last = y[-1].copy()
        return y


class QualityMonitor:
    """Online per-channel quality of raw EMG; one :class:`QualityReport` per ``update_s``.

    Parameters
    ----------
    channel_labels : the stream's EMG channels, in column order.
    rate_hz : sampling rate (4096 Hz for the EIFER amplifier; any rate above ~2 x 450 Hz).
    config : thresholds and windows (:func:`~streaming.dsp.quality_config.load_quality_config`).
    neighbours : ``{label: [neighbour labels]}`` for the noise and bridging comparisons, e.g.
        :func:`nearest_neighbours` of the electrode scheme's positions; None: no comparisons.
    range_uv : the amplifier's input range (+/- uV) where the stream declares one; None: railing
        is judged from repeated extreme values.
    channel_targets : ``{movement: per-channel level}`` (:func:`channel_targets`) for the
        activity check during protocol movements; None: no activity check.
    """

    def __init__(
        self,
        channel_labels: Sequence[str],
        rate_hz: float,
        config: QualityConfig | None = None,
        *,
        neighbours: Mapping[str, Sequence[str]] | None = None,
        range_uv: float | None = None,
        channel_targets: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.labels = tuple(channel_labels)
        if not self.labels:
            raise ValueError("quality monitor needs at least one channel")
        self.n_channels = n = len(self.labels)
        self.rate_hz = float(rate_hz)
        self.config = cfg = config if config is not None else QualityConfig()
        if cfg.band_hz[1] >= self.rate_hz / 2:
            raise ValueError(f"band_hz {cfg.band_hz} must lie below Nyquist ({self.rate_hz / 2})")
        self.range_uv = None if range_uv is None else float(range_uv)
        self.block_n = max(8, round(cfg.update_s * self.rate_hz))
        self.window_blocks = max(1, round(cfg.window_s / cfg.update_s))
        self.baseline_blocks = max(1, round(cfg.baseline_s / cfg.update_s))
        self._targets = {
            k: np.asarray(v, dtype=np.float64) for k, v in (channel_targets or {}).items()
        }
        for name, target in self._targets.items():
            if target.shape != (n,):
                raise ValueError(f"channel_targets[{name!r}] has shape {target.shape}, not ({n},)")
        self._neighbours = self._neighbour_index(neighbours or {})
        self._spectral_setup()
        self._lf_sos = design.butter_bandpass(*cfg.lf_hz, 2, self.rate_hz)
        self._hp_sos = design.butter_highpass(cfg.bridge_highpass_hz, 2, self.rate_hz)
        self.reset()

    # ---- set-up -----------------------------------------------------------------------------

    def _neighbour_index(self, neighbours: Mapping[str, Sequence[str]]) -> np.ndarray:
        """``(n, k)`` neighbour indices, -1 padded."""
        where = {lab: i for i, lab in enumerate(self.labels)}
        unknown = sorted({x for k, v in neighbours.items() for x in (k, *v)} - where.keys())
        if unknown:
            raise ValueError(f"neighbours name unknown channel(s) {unknown}; have {self.labels}")
        k = max((len(v) for v in neighbours.values()), default=0)
        index = np.full((self.n_channels, k), -1, dtype=np.intp)
        for lab, nbrs in neighbours.items():
            row = [where[x] for x in nbrs if x != lab]
            index[where[lab], : len(row)] = row
        return index

    def _spectral_setup(self) -> None:
        cfg, n, fs = self.config, self.block_n, self.rate_hz
        self._window = signal.windows.hann(n, sym=False)
        self._freqs = np.fft.rfftfreq(n, 1.0 / fs)
        df = self._freqs[1]
        # one-sided power per bin: sum over bins = mean square of the windowed-corrected signal
        self._scale = np.full(self._freqs.size, 2.0 / (n * np.sum(self._window**2)))
        self._scale[0] /= 2.0
        if n % 2 == 0:
            self._scale[-1] /= 2.0
        top = 0.45 * fs

        def bins(lo: float, hi: float) -> np.ndarray:
            return (self._freqs >= lo) & (self._freqs <= min(hi, top))

        self._band = bins(*cfg.band_hz)
        self._lf = bins(max(cfg.lf_hz[0], df), cfg.lf_hz[1] - 1e-9)
        self._noise = bins(*cfg.noise_hz)
        self._mains_candidates = (50.0, 60.0) if cfg.mains_hz is None else (cfg.mains_hz,)
        self._line_bins = {f: self._lines(f) for f in self._mains_candidates}

    def _lines(self, f0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For mains ``f0``: (line bins (h, 3), floor bins (h, 6), mask of all line bins)."""
        df = self._freqs[1]
        top = min(self.config.mains_max_hz, self.config.band_hz[1], 0.45 * self.rate_hz)
        harmonics = f0 * np.arange(1, int(top // f0) + 1)
        centre = np.rint(harmonics / df).astype(int)
        line = centre[:, None] + np.arange(-1, 2)[None, :]
        floor = centre[:, None] + np.array([-5, -4, -3, 3, 4, 5])[None, :]
        floor = np.clip(floor, 1, self._freqs.size - 1)
        mask = np.zeros(self._freqs.size, dtype=bool)
        mask[line.ravel()] = True
        return line, floor, mask

    def reset(self) -> None:
        """Forget all signal history (filters, windows, baseline, flags)."""
        n, w = self.n_channels, self.window_blocks
        self.sample_index = 0
        self._buf = np.empty((self.block_n, n))
        self._fill = 0
        self._hold = _Hold(n)
        self._prev = np.full(n, np.nan)  # last raw sample of the previous block
        self._lf_zi: np.ndarray | None = None
        self._hp_zi: np.ndarray | None = None
        self._spike_above = np.zeros(n, dtype=bool)
        # per-block statistics of the last `window_blocks` blocks (ring, summed per report)
        self._stats = {
            key: np.zeros((w, n))
            for key in (
                "n_finite",
                "nan",
                "stuck",
                "railed",
                "band",
                "line",
                "line_var",
                "lf",
                "noise",
                "spikes",
            )
        }
        self._gram = np.zeros((w, n, n))
        self._ring_pos = 0
        self._blocks = 0
        self._rest_power = np.full((self.baseline_blocks, n), np.nan)
        self._rest_pos = 0
        self._line_total = {f: 0.0 for f in self._mains_candidates}
        self._level = np.zeros((n, len(REASONS)), dtype=np.int8)
        self._silent_at = np.full(n, -(1 << 62), dtype=np.int64)  # last activity verdict
        self._movement: str | None = None
        self._movement_start = 0
        self._last_movement_end: int | None = None
        self._markers_seen = False
        self._pending_markers: list[tuple[int, str | None]] = []

    # ---- input ------------------------------------------------------------------------------

    def set_movement(self, movement: str | None, at_sample: int | None = None) -> None:
        """The protocol's movement from sample ``at_sample`` on (default: the next sample given
        to :meth:`process`); None = no movement (rest). Movements in ``rest_movements`` count as
        rest. Once called, only rest blocks feed the baseline."""
        at = self.sample_index if at_sample is None else int(at_sample)
        self._pending_markers.append((at, movement))
        self._markers_seen = True

    def process(self, chunk: np.ndarray, t_lsl_end: float | None = None) -> QualityReport | None:
        """Feed ``(n, channels)`` microvolts; the newest report if a block completed, else None.

        ``t_lsl_end`` is the LSL time of the chunk's last sample (reports then carry the time of
        their block's last sample)."""
        reports = self.process_all(chunk, t_lsl_end)
        return reports[-1] if reports else None

    def process_all(self, chunk: np.ndarray, t_lsl_end: float | None = None) -> list[QualityReport]:
        """As :meth:`process`, but every report the chunk completed (a long chunk may complete
        several blocks), oldest first."""
        x = np.asarray(chunk)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise StreamFormatError(
                f"quality monitor: expected a chunk of shape (n_samples, {self.n_channels}), "
                f"got {x.shape}"
            )
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise StreamFormatError(f"quality monitor: EMG chunk must be numeric, got {x.dtype}")
        end_index = self.sample_index + self._fill + x.shape[0]
        reports = []
        i = 0
        while i < x.shape[0]:
            k = min(x.shape[0] - i, self.block_n - self._fill)
            self._buf[self._fill : self._fill + k] = x[i : i + k]
            self._fill += k
            i += k
            if self._fill == self.block_n:
                self._fill = 0
                self.sample_index += self.block_n
                t = None
                if t_lsl_end is not None:
                    t = float(t_lsl_end) - (end_index - self.sample_index) / self.rate_hz
                reports.append(self._analyse(self._buf, t))
        return reports

    # ---- one block --------------------------------------------------------------------------

    def _analyse(self, raw: np.ndarray, t_lsl: float | None) -> QualityReport:
        finite = np.isfinite(raw)
        x = self._hold.fill(raw, finite)
        stats = self._block_stats(raw, x, finite)
        slot = self._ring_pos
        for key, value in stats.items():
            if key == "gram":
                self._gram[slot] = value
            else:
                self._stats[key][slot] = value
        self._ring_pos = (slot + 1) % self.window_blocks
        self._blocks += 1
        self._advance_movement()
        metrics, partner = self._metrics()
        self._level = self._raw_levels(metrics)
        self._remember_rest(stats["band"] / self.block_n)
        return self._report(t_lsl, metrics, partner)

    def _remember_rest(self, band_power: np.ndarray) -> None:
        """Keep the block's EMG-band power for the rest baseline if it was a rest block, on the
        channels without a signal fault now (a flat or noisy stretch is no baseline)."""
        faulty = self._level[:, [REASONS.index(r) for r in _NOT_BASELINE]].max(axis=1) > 0
        rest = self._is_rest_block()
        self._rest_power[self._rest_pos] = np.where(rest & ~faulty, band_power, np.nan)
        self._rest_pos = (self._rest_pos + 1) % self.baseline_blocks

    def _block_stats(self, raw: np.ndarray, x: np.ndarray, finite: np.ndarray) -> dict[str, Any]:
        n = self.block_n
        out: dict[str, Any] = {"n_finite": finite.sum(axis=0).astype(float)}
        out["nan"] = n - out["n_finite"]
        # repeated samples (both finite), including the step from the previous block
        prev_ok = np.isfinite(self._prev)
        same = (raw[1:] == raw[:-1]) & finite[1:] & finite[:-1]
        out["stuck"] = same.sum(axis=0) + ((raw[0] == self._prev) & prev_ok & finite[0])
        self._prev = raw[-1].copy()
        out["railed"] = self._railed_count(raw, finite, same)
        # spectrum: powers per bin and channel (units uV^2 per bin, summed = mean square)
        xd = x - x.mean(axis=0)
        spec = np.abs(np.fft.rfft(xd * self._window[:, None], axis=0)) ** 2
        spec *= self._scale[:, None]
        line_power, line_var = {}, {}
        for f0, (line, floor, _mask) in self._line_bins.items():
            # floor bins are ~ exponential (chi-square, 2 dof) around mu: the estimate's variance
            # is 3 mu^2 (three line bins) + 9 mu^2 / 6 (the floor mean), 4.5 mu^2 per line
            line_var[f0] = 4.5 * (spec[floor].mean(axis=1) ** 2).sum(axis=0)
            tone = spec[line].sum(axis=1) - 3.0 * spec[floor].mean(axis=1)  # (h, C)
            line_power[f0] = np.maximum(tone, 0.0).sum(axis=0)
            self._line_total[f0] += float(line_power[f0].sum())
        f0 = self.mains_hz
        mask = self._line_bins[f0][2]
        line, floor, _ = self._line_bins[f0]
        emg_in_lines = 3.0 * spec[floor].mean(axis=1).sum(axis=0)  # the floor under the lines
        band = spec[self._band & ~mask].sum(axis=0) + np.minimum(
            emg_in_lines, spec[self._band & mask].sum(axis=0)
        )
        # per-block sums (x n samples) so a window's mean is sum / (blocks x n)
        out["band"] = band * n
        out["line"] = line_power[f0] * n
        out["line_var"] = line_var[f0] * n * n
        out["lf"] = spec[self._lf].sum(axis=0) * n
        out["noise"] = spec[self._noise & ~mask].sum(axis=0) * n
        # time-domain filters with carried state
        if self._lf_zi is None:
            self._lf_zi = signal.sosfilt_zi(self._lf_sos)[:, :, None] * x[0][None, None, :]
            self._hp_zi = signal.sosfilt_zi(self._hp_sos)[:, :, None] * x[0][None, None, :]
        lf, self._lf_zi = signal.sosfilt(self._lf_sos, x, axis=0, zi=self._lf_zi)
        hp, self._hp_zi = signal.sosfilt(self._hp_sos, x, axis=0, zi=self._hp_zi)
        above = np.abs(lf) > self.config.spike_uv
        onsets = above[1:] & ~above[:-1]
        out["spikes"] = (onsets.sum(axis=0) + (above[0] & ~self._spike_above)).astype(float)
        self._spike_above = above[-1].copy()
        out["gram"] = hp.T @ hp
        return out

    def _railed_count(self, raw: np.ndarray, finite: np.ndarray, same: np.ndarray) -> np.ndarray:
        """Samples at the declared range; without one, repeated samples at the block's extremes
        (a clipped input sits at one value; an unclipped one reaches its extremes once)."""
        if self.range_uv is not None:
            at = (np.abs(raw) >= self.config.rail_fraction * self.range_uv) & finite
            return at.sum(axis=0).astype(float)
        hi = np.max(np.where(finite, raw, -np.inf), axis=0)
        lo = np.min(np.where(finite, raw, np.inf), axis=0)
        at_ext = (raw[1:] == hi) | (raw[1:] == lo)
        flat = hi == lo
        return np.where(flat, 0.0, (same & at_ext).sum(axis=0)).astype(float)

    @property
    def mains_hz(self) -> float:
        """The mains frequency: configured, or the candidate (50/60 Hz) with more line power so
        far over all channels."""
        return max(self._line_total, key=lambda f: (self._line_total[f], -f))

    # ---- movements --------------------------------------------------------------------------

    def _advance_movement(self) -> None:
        """Apply the movement markers up to the block's end."""
        keep = []
        for at, movement in self._pending_markers:
            if at > self.sample_index:
                keep.append((at, movement))
                continue
            if movement in self.config.rest_movements:
                movement = None
            if movement != self._movement:
                if self._movement is not None:
                    self._last_movement_end = at
                self._movement = movement
                self._movement_start = at
        self._pending_markers = keep

    def _is_rest_block(self) -> bool:
        if not self._markers_seen:
            return True
        if self._movement is not None:
            return False
        guard = round(self.config.rest_guard_s * self.rate_hz) + self.block_n
        end = self._last_movement_end
        return end is None or self.sample_index - end >= guard

    # ---- metrics and levels -----------------------------------------------------------------

    def _metrics(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        blocks = min(self._blocks, self.window_blocks)
        count = blocks * self.block_n
        s = {k: v.sum(axis=0) for k, v in self._stats.items()}
        band, line = s["band"] / count, s["line"] / count
        lf, noise = s["lf"] / count, s["noise"] / count
        m: dict[str, np.ndarray] = {}
        rest = self._rest_baseline()
        with np.errstate(divide="ignore", invalid="ignore"):
            # against the resting EMG band where known: a contraction does not hide the hum
            ref = np.where(np.isfinite(rest) & (rest > 0), rest, band)
            m["mains_db"] = np.maximum(10 * np.log10(line / ref), _DB_FLOOR)
            m["mains_db"] = np.where(ref > 0, m["mains_db"], np.where(line > 0, 60.0, _DB_FLOOR))
            m["mains_uv"] = np.sqrt(line)
            self._line_sd = np.sqrt(s["line_var"]) / count  # of the window's line power
            self._line_ref = ref
            m["rms_uv"] = np.sqrt(band)
            m["rest_rms_uv"] = np.sqrt(rest)
            m["lf_fraction"] = np.where(lf + band > 0, lf / (lf + band), 0.0)
            m["spike_count"] = s["spikes"]
            m["nan_fraction"] = s["nan"] / count
            finite = np.maximum(s["n_finite"], 1.0)
            m["stuck_fraction"] = s["stuck"] / finite
            m["railed_fraction"] = s["railed"] / finite
            m["noise_db"] = self._noise_db(noise, band)
            m["bridge_corr"], partner = self._bridging()
            snr = 10 * np.log10(band / rest)
            m["activity_snr_db"] = np.clip(snr, _DB_FLOOR, -_DB_FLOOR)
            m["expected_level"] = self._expected()
        return m, partner

    def _rest_baseline(self) -> np.ndarray:
        hist = self._rest_power
        have = np.isfinite(hist).any(axis=0)
        out = np.full(self.n_channels, np.nan)
        if have.any():
            out[have] = np.nanpercentile(hist[:, have], self.config.baseline_percentile, axis=0)
        return out

    def _neighbour_median(self, values: np.ndarray) -> np.ndarray:
        """Median of ``values`` over each channel's neighbours (NaN where it has none)."""
        idx = self._neighbours
        vals = np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a channel without neighbours
            return np.nanmedian(vals, axis=1)

    def _noise_db(self, noise: np.ndarray, band: np.ndarray) -> np.ndarray:
        """How far the channel's noise-band power stands above its neighbours' (dB), counted
        only as far as its spectrum is also flatter than theirs: broadband noise raises both, a
        contraction under one electrode raises the power but keeps an EMG-shaped spectrum, and a
        resting channel beside contracting ones is flatter but not louder."""
        if self._neighbours.shape[1] == 0:
            return np.full(self.n_channels, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            shape = noise / band
            power_db = 10 * np.log10(noise / self._neighbour_median(noise))
            shape_db = 10 * np.log10(shape / self._neighbour_median(shape))
            db = np.minimum(power_db, shape_db)
        db = np.where(np.isnan(power_db) | np.isnan(shape_db), np.nan, db)
        return np.clip(db, _DB_FLOOR, -_DB_FLOOR)

    def _bridging(self) -> tuple[np.ndarray, np.ndarray]:
        """Largest HF correlation with a neighbour of similar level, and that neighbour."""
        idx = self._neighbours
        n = self.n_channels
        if idx.shape[1] == 0:
            return np.zeros(n), np.full(n, -1)
        g = self._gram.sum(axis=0)
        power = np.diag(g).copy()
        rows = np.arange(n)[:, None]
        j = np.maximum(idx, 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            corr = g[rows, j] / np.sqrt(power[:, None] * power[j])
            level_db = np.abs(10 * np.log10(power[:, None] / power[j]))
        ok = (idx >= 0) & np.isfinite(corr) & (level_db <= self.config.bridge_level_db)
        corr = np.where(ok, corr, 0.0)
        best = np.argmax(corr, axis=1)
        value = corr[np.arange(n), best]
        partner = np.where(value > 0, idx[np.arange(n), best], -1)
        return value, partner

    def _expected(self) -> np.ndarray:
        if self._movement is None:
            return np.zeros(self.n_channels)
        return self._targets.get(self._movement, np.zeros(self.n_channels))

    def _raw_levels(self, m: dict[str, np.ndarray]) -> np.ndarray:
        cfg, cur = self.config, self._level
        col = {r: i for i, r in enumerate(REASONS)}
        out = np.zeros_like(cur)

        def put(reason: str, metric: np.ndarray, limit: Limit) -> None:
            out[:, col[reason]] = np.maximum(
                out[:, col[reason]], _levels(metric, limit, cur[:, col[reason]])
            )

        put("nan", m["nan_fraction"], cfg.nan)
        put("flat", m["rms_uv"], cfg.flat)
        put("railed", m["railed_fraction"], cfg.railed)
        put("stuck", m["stuck_fraction"], cfg.stuck)
        put("noise", m["noise_db"], cfg.noise)
        self._put_mains(m, out, cur)
        put("bridged", m["bridge_corr"], cfg.bridged)
        put("motion", m["lf_fraction"], cfg.motion_lf)
        put("motion", m["spike_count"], cfg.motion_spikes)
        put("baseline", m["rest_rms_uv"], cfg.baseline)
        # one fault, one name: a flat line also repeats and sits at its extremes
        flat = out[:, col["flat"]] > 0
        out[flat, col["stuck"]] = 0
        out[flat, col["railed"]] = 0
        out[out[:, col["railed"]] > 0, col["stuck"]] = 0
        # activity is judged on channels without a signal fault only (a faulty channel's
        # silence is that fault's consequence)
        faulty = out[:, [col[r] for r in _NOT_BASELINE]].max(axis=1) > 0
        judged = self._silent_judged(m) & ~faulty
        put("silent", np.where(judged, m["activity_snr_db"], np.nan), cfg.silent)
        silent = col["silent"]
        self._silent_at[judged] = self.sample_index
        # no new evidence: the verdict holds for silent_hold_s after it was last judged
        recent = self.sample_index - self._silent_at <= cfg.silent_hold_s * self.rate_hz
        hold = ~judged & recent
        out[hold & ~faulty, silent] = cur[hold & ~faulty, silent]
        return out

    def _put_mains(self, m: dict[str, np.ndarray], out: np.ndarray, cur: np.ndarray) -> None:
        """Mains level: raised by lines both above the threshold and significant against the
        EMG floor around them (``mains_min_z`` standard deviations of the line estimate); dropped
        only where a hum at the check level would be significant, so a contraction's random
        power in the line bins neither raises nor clears the flag."""
        cfg, col = self.config, REASONS.index("mains")
        line = m["mains_uv"] ** 2
        sd = self._line_sd
        significant = (line >= cfg.mains_min_z * sd) & (m["mains_uv"] >= cfg.mains_min_uv)
        level = _levels(np.where(significant, m["mains_db"], _DB_FLOOR), cfg.mains, cur[:, col])
        check = cfg.mains.check if cfg.mains.check is not None else cfg.mains.bad
        judgeable = cfg.mains_min_z * sd < self._line_ref * 10 ** ((check or 0.0) / 10)
        out[:, col] = np.where(~judgeable & (level < cur[:, col]), cur[:, col], level)

    def _silent_judged(self, m: dict[str, np.ndarray]) -> np.ndarray:
        """Channels whose activity is judged now: the current movement drives their muscle at
        ``silent_min_level`` or more and has run for ``silent_after_s``."""
        cfg = self.config
        due = (
            self._movement is not None
            and self.sample_index - self._movement_start >= cfg.silent_after_s * self.rate_hz
        )
        return (
            due & (m["expected_level"] >= cfg.silent_min_level) & np.isfinite(m["activity_snr_db"])
        )

    def _report(
        self, t_lsl: float | None, m: dict[str, np.ndarray], partner: np.ndarray
    ) -> QualityReport:
        level = self._level
        state_level = level.max(axis=1)
        partner_labels = tuple(self.labels[p] if p >= 0 else "" for p in partner)
        reasons = []
        for c in range(self.n_channels):
            names = []
            for r in np.flatnonzero(level[c]):
                name = REASONS[r]
                names.append(f"bridged:{partner_labels[c]}" if name == "bridged" else name)
            reasons.append(tuple(names))
        return QualityReport(
            t_lsl=t_lsl,
            sample_index=self.sample_index,
            channels=self.labels,
            states=tuple(STATES[s] for s in state_level),
            reasons=tuple(reasons),
            metrics={k: tuple(float(v) for v in m[k]) for k in METRICS},
            mains_hz=self.mains_hz,
            movement=self._movement,
            bridge_partner=partner_labels,
        )
