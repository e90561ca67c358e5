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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import signal

from streaming.dsp import design
from streaming.dsp.quality_config import Limit, QualityConfig
from streaming.dsp.quality_metrics import (
    DB_FLOOR,
    HoldLast,
    bridging,
    channel_targets,
    levels,
    mains_levels,
    mains_line_bins,
    nearest_neighbours,
    neighbour_index,
    noise_db,
    railed_count,
    rest_baseline,
)
from streaming.dsp.quality_report import (
    BAD,
    CHECK,
    GOOD,
    METRICS,
    REASONS,
    STATES,
    QualityReport,
)
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

# reasons whose blocks do not feed the rest baseline (their power is not the electrode's rest)
_NOT_BASELINE = ("nan", "flat", "railed", "stuck", "noise", "bridged", "motion")


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
        self._neighbours = neighbour_index(self.labels, neighbours or {})
        self._spectral_setup()
        self._lf_sos = design.butter_bandpass(*cfg.lf_hz, 2, self.rate_hz)
        self._hp_sos = design.butter_highpass(cfg.bridge_highpass_hz, 2, self.rate_hz)
        self.reset()

    # ---- set-up -----------------------------------------------------------------------------

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
        top = min(cfg.mains_max_hz, cfg.band_hz[1], 0.45 * fs)
        self._line_bins = {f: mains_line_bins(self._freqs, f, top) for f in self._mains_candidates}

    def reset(self) -> None:
        """Forget all signal history (filters, windows, baseline, flags)."""
        n, w = self.n_channels, self.window_blocks
        self.sample_index = 0
        self._buf = np.empty((self.block_n, n))
        self._fill = 0
        self._hold = HoldLast(n)
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

    @property
    def samples_to_next_report(self) -> int:
        """Samples that complete the current block (and give the next report)."""
        return self.block_n - self._fill

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
        out["railed"] = railed_count(raw, finite, same, self.range_uv, self.config.rail_fraction)
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
        rest = rest_baseline(self._rest_power, self.config.baseline_percentile)
        with np.errstate(divide="ignore", invalid="ignore"):
            # against the resting EMG band where known: a contraction does not hide the hum
            ref = np.where(np.isfinite(rest) & (rest > 0), rest, band)
            m["mains_db"] = np.maximum(10 * np.log10(line / ref), DB_FLOOR)
            m["mains_db"] = np.where(ref > 0, m["mains_db"], np.where(line > 0, 60.0, DB_FLOOR))
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
            m["noise_db"] = noise_db(noise, band, self._neighbours)
            m["bridge_corr"], partner = bridging(
                self._gram.sum(axis=0), self._neighbours, self.config.bridge_level_db
            )
            snr = 10 * np.log10(band / rest)
            m["activity_snr_db"] = np.clip(snr, DB_FLOOR, -DB_FLOOR)
            m["expected_level"] = self._expected()
        return m, partner

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
                out[:, col[reason]], levels(metric, limit, cur[:, col[reason]])
            )

        put("nan", m["nan_fraction"], cfg.nan)
        put("flat", m["rms_uv"], cfg.flat)
        put("railed", m["railed_fraction"], cfg.railed)
        put("stuck", m["stuck_fraction"], cfg.stuck)
        put("noise", m["noise_db"], cfg.noise)
        mains = col["mains"]
        out[:, mains] = mains_levels(m, self._line_sd, self._line_ref, cfg, cur[:, mains])
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
        partner_labels = tuple(self.labels[p] if p >= 0 else "" for p in partner)
        return QualityReport.from_levels(
            self._level,
            partner_labels,
            m,
            t_lsl,
            self.sample_index,
            self.labels,
            self.mains_hz,
            self._movement,
        )
