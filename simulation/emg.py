"""Synthetic facial surface EMG: muscle activity following a movement script, with the artefacts of
a real recording (cross-talk, mains hum, amplifier noise, electrode faults).

Model, per sample k and channel c (microvolts)::

    emg[k, c] = sum_u G[c, u] * A_u * a_u(k) * s_u(k)      muscle sources (u = muscle x side)
              + rest_uv * r_c(k)                           resting tone at each site
              + amplifier_noise_uv * w_c(k)                white amplifier noise
              + hum_c(k) + dc_offset_uv                    mains 50 Hz + harmonics, offset
    then electrode faults per channel (FaultConfig; below), in the order configured

- ``s_u``, ``r_c``: unit-RMS Gaussian noise shaped by the surface-EMG spectrum model of
  Shwedyk, Balasubramanian & Scott (1977, IEEE Trans. Biomed. Eng. 24:417-424),
  ``P(f) ~ fh^4 f^2 / ((f^2 + fl^2)(f^2 + fh^2)^2)`` with fl = 60, fh = 120 Hz (values common
  in EMG simulation studies; peak ~65 Hz, median ~95 Hz), then a causal Butterworth band-pass
  (default 20-450 Hz, order 4): facial EMG lies in ~20-500 Hz with spectral humps at 30-65 Hz
  (van Boxtel 2001, Psychophysiology 38:22-34). Real surface EMG is close to Gaussian noise:
  mean|x|/RMS of the biceps recording in shared/data is 0.78 (Gaussian: 0.80).
- ``a_u`` (0..1) from :class:`~simulation.movements.MovementScript`; ``A_u`` the
  muscle's RMS at full contraction (``configs/movements.toml``: tens to ~150 uV). The amplitude
  also fluctuates slowly around ``A_u a_u`` (``amplitude_cv``, low-pass ``fluctuation_hz``), as
  the force and motor-unit recruitment of a held expression do (size a guess).
- ``rest_uv`` ~ 3 uV: resting facial EMG sits at a few uV (the Jena task means of inactive
  channels are 1-2 uV in cvjena/electromyogram ``app/data/fridlund.json``).
- ``G``: 1 (divided by sqrt of their count) for the muscles under the electrode, else
  ``crosstalk * exp(-d^2 / (2 L^2))`` with ``d`` the face distance of muscle site and electrode:
  volume conduction makes neighbouring facial muscles leak into each other's channels
  (a guess at its size; doubled for monopolar schemes, which pick up more).
- Hum: ``amplitude_uv`` per channel (x0.5..1.5, random phase), harmonics relative to it;
  monopolar channels (Kuramoto) pick up ``monopolar_factor`` more (common mode not cancelled).

Electrode faults (``faults``, TOML ``[[faults]]``; one :class:`FaultConfig` each, active on
samples ``[round(start_s * rate), round((start_s + duration_s) * rate))``):

- ``flat`` 0; ``railed`` a mains wave clipped at +/- ``amplitude_uv``; ``spikes`` Poisson jumps
  decaying with ``event_s`` (motion artefacts); ``dropout`` Poisson NaN runs (lost packets).
- ``hum``: a poor or drying contact raises the electrode-skin impedance and its imbalance with the
  other input, which turns the body's common-mode mains potential into a differential one
  (Huhta & Webster 1973, IEEE Trans. Biomed. Eng. 20:91-101; Winter & Webster 1983, ibid.
  30:58-62): the channel gets its own hum, fundamental ``amplitude_uv`` (random phase), the
  :class:`HumConfig` frequency and relative harmonics, on top of the shared few-uV hum.
- ``bridge``: electrolyte gel smeared between two neighbouring sites shorts them: both inputs see
  one potential, so the two channels carry (nearly) the same signal; the bridged pair is found by
  its near-zero difference, i.e. correlation near 1 (Tenke & Kayser 2001, Clin. Neurophysiol.
  112:545-550; Alschuler et al. 2014, ibid. 125:484-490). Modelled: both channels become the mean
  of the two, plus each its own fresh amplifier noise (``amplifier_noise_uv``, which a short
  between the electrodes does not share).
- ``lifting``: an electrode coming off. Its lifted fraction ``p`` rises linearly from 0 at
  ``start_s`` to 1 after ``ramp_s`` (then stays 1: an open input, until the fault ends). The
  channel is ``(1 - p) * signal + p * (noise_uv * white + hum at amplitude_uv)``: the shrinking,
  drying contact's impedance rises until the input divider passes no EMG; mains pickup grows with
  the impedance imbalance (Huhta & Webster 1973) and electrode noise with the impedance (Huigen,
  Peper & Grimbergen 2002, Med. Biol. Eng. Comput. 40:332-338). Linear in ``p`` is a
  phenomenological choice, not a fitted law; the end state is what an unplugged input shows.
- ``misplaced``: the channel's muscle sources (its own muscle and the cross-talk of the others,
  the ``G`` term) are left out; resting tone, amplifier noise and hum stay. An electrode off its
  muscle looks clean at rest and is only found by staying silent when its muscle should work
  (the quality monitor's ``silent`` check).

What is active where is public: :meth:`EmgSimulator.fault_windows` (each fault's exact sample
window), :meth:`EmgSimulator.fault_codes` (per sample and channel, bits of
:data:`~simulation.emg_config.FAULT_CODES`) and :meth:`EmgSimulator.active_faults` (per channel,
the kinds active in a sample range). A window is the configured one: ``spikes`` and ``dropout``
are active through it though their events are intermittent; a ``bridge`` is active on both
``channel`` and ``partner``. The live truth stream carries them (:mod:`simulation.live`).

Everything is vectorised over channels and the noise comes from per-purpose generators, so the
output is deterministic for a seed and independent of how ``generate`` calls are chunked (with a
scripted movement sequence; a :class:`LiveScript` follows markers as they arrive instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from simulation.emg_config import (
    FAULT_BLOCK_S,
    FAULT_CODES,
    FaultConfig,
    HumConfig,
    ScriptConfig,
    SimulatorConfig,
    fault_kinds,
)
from simulation.movements import (
    LiveScript,
    MovementLibrary,
    MovementScript,
    load_movements,
)
from streaming.acquisition.electrodes import ElectrodeScheme, load_scheme
from streaming.config import ConfigError

__all__ = [
    "FAULT_CODES",
    "EmgSimulator",
    "FaultConfig",
    "FaultWindow",
    "HumConfig",
    "ScriptConfig",
    "SimulatorConfig",
    "build_script",
    "emg_spectrum_sos",
]


def build_script(
    config: ScriptConfig, library: MovementLibrary, seed: int
) -> MovementScript | LiveScript:
    """The movement script a :class:`ScriptConfig` describes; unknown movements are an error.

    ``markers`` gives an empty :class:`LiveScript`: whoever reads the markers feeds it.
    """
    if config.kind == "markers":
        seed_ = config.seed if config.seed is not None else seed
        return LiveScript(
            ramp_s=config.ramp_s, intensity_jitter=config.intensity_jitter, seed=seed_
        )
    if config.kind == "rest":
        return MovementScript((), 10.0, config.ramp_s)
    if config.kind == "custom":
        names = [e[0] for e in config.events]
        script = MovementScript.from_list(config.events, ramp_s=config.ramp_s)
    else:
        names = config.movements + config.emotions
        script = MovementScript.from_protocol(
            seed=config.seed if config.seed is not None else seed,
            movements=config.movements,
            emotions=config.emotions,
            repetitions=config.repetitions,
            emotion_repetitions=config.emotion_repetitions,
            lead_in_s=config.lead_in_s,
            instruction_s=config.instruction_s,
            hold_s=config.hold_s,
            pause_s=config.pause_s,
            show_s=config.show_s,
            perform_s=config.perform_s,
            emotion_pause_s=config.emotion_pause_s,
            ramp_s=config.ramp_s,
            intensity_jitter=config.intensity_jitter,
        )
    unknown = sorted({n for n in names if n not in library.movements})
    if unknown:
        raise ConfigError(
            f"script: unknown movement(s) {unknown}; known: {sorted(library.movements)}"
        )
    return script


def emg_spectrum_sos(
    rate_hz: float,
    band_hz: tuple[float, float] = (20.0, 450.0),
    band_order: int = 2,
    spectrum_hz: tuple[float, float] | None = (60.0, 120.0),
) -> np.ndarray:
    """SOS shaping white noise into surface EMG: Shwedyk spectrum (bilinear), then band-pass."""
    band = signal.butter(band_order, band_hz, btype="bandpass", output="sos", fs=rate_hz)
    if spectrum_hz is None:
        return band
    wl, wh = 2 * np.pi * spectrum_hz[0], 2 * np.pi * spectrum_hz[1]
    # H(s) = wh^2 s / ((s + wl)(s + wh)^2): |H|^2 is the Shwedyk et al. (1977) spectrum
    z, p, k = signal.bilinear_zpk([0.0], [-wl, -wh, -wh], wh**2, rate_hz)
    return np.vstack([signal.zpk2sos(z, p, k), band])


_NOISE_WORD = 0x6E6F6973  # "nois": seeds the per-block noise of hum/bridge/lifting faults


@dataclass(frozen=True)
class FaultWindow:
    """Where and when one configured fault is active: samples ``[start, stop)`` (``stop`` None:
    forever) on ``channels`` (the fault's channel, and a bridge's partner)."""

    kind: str
    channels: tuple[str, ...]
    start: int
    stop: int | None

    @property
    def code(self) -> int:
        """The kind's bit in :data:`~simulation.emg_config.FAULT_CODES`."""
        return FAULT_CODES[self.kind]


def _unit_rms_gain(sos: np.ndarray, n: int = 1 << 15) -> float:
    """RMS gain of ``sos`` for unit white noise: sqrt(sum of squared impulse response)."""
    impulse = np.zeros(n)
    impulse[0] = 1.0
    return float(np.sqrt(np.sum(signal.sosfilt(sos, impulse) ** 2)))


class EmgSimulator:
    """Stateful generator of multichannel facial EMG in microvolts.

    ``generate(n)`` returns the next ``n`` samples: ``emg_uv`` float32 ``(n, n_channels)`` in
    scheme channel order and the true ``activation`` float32 ``(n, n_muscles)`` in
    :attr:`muscle_labels` order (``<muscle>_l``, ``<muscle>_r``).

    Parameters
    ----------
    config : SimulatorConfig | None
        Signal model, seed and script (default: the shipped defaults).
    scheme : ElectrodeScheme | None
        Electrode scheme to simulate (default: ``config.scheme`` from ``configs/electrodes``).
    library : MovementLibrary | None
        Muscles and movements (default: ``config.movements_file`` or the shipped one).
    script : MovementScript | LiveScript | None
        What the face does over time (default: built from ``config.script`` and the seed).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        scheme: ElectrodeScheme | None = None,
        library: MovementLibrary | None = None,
        script: MovementScript | LiveScript | None = None,
    ) -> None:
        self.config = config = config or SimulatorConfig()
        self.scheme = scheme if scheme is not None else load_scheme(config.scheme)
        self.library = library if library is not None else load_movements(config.movements_file)
        self.script = (
            script if script is not None else build_script(config.script, self.library, config.seed)
        )
        self.rate_hz = float(config.rate_hz)
        self.labels: list[str] = self.scheme.labels
        muscles = self.library.muscle_names
        self.muscle_labels = [f"{m}_{s}" for m in muscles for s in ("l", "r")]
        n_ch, n_mu = len(self.labels), len(self.muscle_labels)

        seeds = np.random.SeedSequence(config.seed).spawn(5)
        self._rng_source = np.random.default_rng(seeds[0])
        self._rng_amp = np.random.default_rng(seeds[1])
        layout_rng = np.random.default_rng(seeds[2])
        self._fault_key = int(seeds[3].generate_state(1)[0])

        self.mixing = self._mixing_matrix()  # (n_channels, n_muscles)
        self._mixing_t = np.ascontiguousarray(self.mixing.T)  # contiguous: a faster BLAS path
        self._max_uv = np.repeat([self.library.muscles[m].max_uv for m in muscles], 2)
        self._side_gain = np.tile([config.left_gain, config.right_gain], len(muscles))

        self._sos = emg_spectrum_sos(
            self.rate_hz, config.band_hz, config.band_order, config.spectrum_hz
        )
        self._norm = 1.0 / _unit_rms_gain(self._sos)
        self._zi = np.zeros((self._sos.shape[0], 2, n_mu + n_ch))
        self._rng_fluct = np.random.default_rng(seeds[4])
        self._sos_fluct = signal.butter(2, config.fluctuation_hz, output="sos", fs=self.rate_hz)
        self._norm_fluct = 1.0 / _unit_rms_gain(self._sos_fluct, 1 << 17)
        self._zi_fluct = np.zeros((self._sos_fluct.shape[0], 2, n_mu))

        hum = config.hum
        factor = hum.monopolar_factor if self.scheme.montage == "monopolar" else 1.0
        amp = hum.amplitude_uv * factor * layout_rng.uniform(0.5, 1.5, n_ch)
        phase = layout_rng.uniform(0, 2 * np.pi, n_ch)
        rel = np.array([1.0, *hum.harmonics])
        self._hum_harmonics = np.arange(1, len(rel) + 1)
        # hum = sum_h rel_h * amp_c * sin(h (w t + phase_c)) = [sin, cos] basis @ coefficients
        h_phase = self._hum_harmonics[:, None] * phase[None, :]
        self._hum_coef = np.concatenate(
            [rel[:, None] * amp * np.cos(h_phase), rel[:, None] * amp * np.sin(h_phase)]
        )
        self._faults = [(self.scheme.index(f.channel), f) for f in self._checked_faults()]
        self._noise_cache: dict[int, tuple[int, np.ndarray]] = {}  # fault no -> (block, noise)
        self._fault_phase = [  # a contact fault's own hum: phase per fault, seeded
            np.random.default_rng([self._fault_key, n]).uniform(0, 2 * np.pi)
            for n in range(len(self._faults))
        ]
        self.sample_index = 0  # index of the next sample generated

    def _checked_faults(self) -> list[FaultConfig]:
        for fault in self.config.faults:
            if fault.channel not in self.labels:
                raise ConfigError(
                    f"fault on unknown channel {fault.channel!r}; scheme "
                    f"{self.scheme.name!r} has {self.labels}"
                )
            if fault.partner is not None and fault.partner not in self.labels:
                raise ConfigError(
                    f"bridge fault on {fault.channel!r}: unknown partner channel "
                    f"{fault.partner!r}; scheme {self.scheme.name!r} has {self.labels}"
                )
        return list(self.config.faults)

    def fault_windows(self) -> list[FaultWindow]:
        """Each configured fault's exact sample window and channels, in config order."""
        windows = []
        for fault in self.config.faults:
            start, stop = self._window(fault)
            channels = (fault.channel,) if fault.partner is None else (fault.channel, fault.partner)
            windows.append(FaultWindow(fault.kind, channels, start, stop))
        return windows

    def fault_codes(self, start: int, stop: int) -> np.ndarray:
        """``(stop - start, n_channels)`` int64: per sample ``[start, stop)`` and channel, the
        bitwise OR of the :data:`~simulation.emg_config.FAULT_CODES` of the faults active there
        (0: clean). Pure: reads the configuration only, any range, any order."""
        index = np.arange(int(start), int(stop), dtype=np.int64)
        codes = np.zeros((len(index), self.n_channels), dtype=np.int64)
        for window in self.fault_windows():
            end = np.inf if window.stop is None else window.stop
            active = (index >= window.start) & (index < end)
            for label in window.channels:
                codes[active, self.scheme.index(label)] |= window.code
        return codes

    def active_faults(self, start: int, stop: int) -> dict[str, tuple[str, ...]]:
        """Per channel label (all of them, in scheme order), the fault kinds active at any sample
        of ``[start, stop)`` (empty: clean), in :data:`~simulation.emg_config.FAULT_CODES` order."""
        any_code = np.bitwise_or.reduce(self.fault_codes(start, stop), axis=0)  # 0 if empty
        return {label: fault_kinds(code) for label, code in zip(self.labels, any_code, strict=True)}

    def _mixing_matrix(self) -> np.ndarray:
        cfg = self.config
        crosstalk = cfg.crosstalk * (2.0 if self.scheme.montage == "monopolar" else 1.0)
        sites, names, sides = [], [], []
        for name, muscle in self.library.muscles.items():
            x, y = muscle.position
            for side, sx in (("left", abs(x)), ("right", -abs(x))):
                sites.append((sx, y))
                names.append(name)
                sides.append(side)
        site_xy = np.array(sites)
        channel_xy = self.scheme.positions
        d2 = np.sum((channel_xy[:, None, :] - site_xy[None, :, :]) ** 2, axis=-1)
        gain = crosstalk * np.exp(-d2 / (2 * cfg.crosstalk_length**2))
        for c, channel in enumerate(self.scheme.channels):
            primary = [
                u
                for u, (name, side) in enumerate(zip(names, sides, strict=True))
                if channel.muscle == name and channel.side in (side, "midline")
            ]
            gain[c, primary] = 1.0 / np.sqrt(len(primary)) if primary else 0.0
        return gain

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @property
    def time_s(self) -> float:
        """Simulated time of the next sample."""
        return self.sample_index / self.rate_hz

    def activation(self, index: np.ndarray) -> np.ndarray:
        """True ``(n, n_muscles)`` activation at absolute sample indices (side gains applied)."""
        return self.activation_at(np.asarray(index) / self.rate_hz)

    def activation_at(self, t_s: np.ndarray) -> np.ndarray:
        """True ``(n, n_muscles)`` activation at simulator times ``t_s`` (s since sample 0).

        The one source of activations: the EMG (:meth:`generate`) and the synthetic participant's
        face (:mod:`simulation.participant`) both read it.
        """
        per_muscle = self.script.activation(
            np.asarray(t_s, dtype=np.float64), self.library, loop=self.config.script.loop
        )
        return np.repeat(per_muscle, 2, axis=1) * self._side_gain[None, :]

    def generate(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n_samples``: ``(emg_uv float32 (n, C), activation float32 (n, M))``."""
        n = int(n_samples)
        if n < 0:
            raise ValueError(f"n_samples must be >= 0, got {n}")
        cfg = self.config
        n_ch, n_mu = self.n_channels, len(self.muscle_labels)
        index = np.arange(self.sample_index, self.sample_index + n, dtype=np.int64)
        act = self.activation(index)

        white = self._rng_source.standard_normal((n, n_mu + n_ch))
        shaped, self._zi = signal.sosfilt(self._sos, white, axis=0, zi=self._zi)
        shaped *= self._norm
        amplitude = act * self._max_uv
        if cfg.amplitude_cv > 0:
            slow = self._rng_fluct.standard_normal((n, n_mu))
            slow, self._zi_fluct = signal.sosfilt(self._sos_fluct, slow, axis=0, zi=self._zi_fluct)
            amplitude *= np.maximum(1.0 + cfg.amplitude_cv * self._norm_fluct * slow, 0.0)
        sources = shaped[:, :n_mu] * amplitude
        emg = sources @ self._mixing_t
        for channel, fault in self._faults:
            if fault.kind == "misplaced" and len(index):
                emg[self._fault_mask(index, fault), channel] = 0.0  # no muscle under it
        emg += cfg.rest_uv * shaped[:, n_mu:]
        if cfg.amplifier_noise_uv > 0:
            emg += cfg.amplifier_noise_uv * self._rng_amp.standard_normal((n, n_ch))
        if cfg.hum.amplitude_uv > 0:
            emg += self._hum(index)
        if cfg.dc_offset_uv:
            emg += cfg.dc_offset_uv
        for fault_no, (channel, fault) in enumerate(self._faults):
            if fault.kind == "misplaced":
                continue  # applied to the muscle sources above
            if fault.kind in ("hum", "bridge", "lifting"):
                self._apply_contact_fault(emg, index, channel, fault, fault_no)
            else:
                self._apply_fault(emg, index, channel, fault)
        self.sample_index += n
        return emg.astype(np.float32), act.astype(np.float32)

    def _hum(self, index: np.ndarray) -> np.ndarray:
        # phase from the integer index modulo one period keeps float precision for long runs
        cycles = (index * self.config.hum.frequency_hz / self.rate_hz) % 1.0
        arg = 2 * np.pi * cycles[:, None] * self._hum_harmonics[None, :]
        return np.concatenate([np.sin(arg), np.cos(arg)], axis=1) @ self._hum_coef

    def _window(self, fault: FaultConfig) -> tuple[int, int | None]:
        """A fault's samples ``[start, stop)``; ``stop`` None: forever."""
        start = round(fault.start_s * self.rate_hz)
        if fault.duration_s is None:
            return start, None
        return start, start + round(fault.duration_s * self.rate_hz)

    def _fault_mask(self, index: np.ndarray, fault: FaultConfig) -> np.ndarray:
        start, stop = self._window(fault)
        return (index >= start) & (index < (np.inf if stop is None else stop))

    def _events(self, fault_no: int, lo: int, hi: int, fault: FaultConfig) -> np.ndarray:
        """Onset sample indices of Poisson fault events in ``[lo, hi)``, drawn per 1 s block."""
        block = round(FAULT_BLOCK_S * self.rate_hz)
        onsets = []
        for b in range(max(lo, 0) // block, (hi - 1) // block + 1):
            rng = np.random.default_rng([self._fault_key, fault_no, b])
            count = rng.poisson(fault.rate_hz * FAULT_BLOCK_S)
            onsets.append(b * block + np.sort(rng.integers(0, block, count)))
        events = np.concatenate(onsets) if onsets else np.zeros(0, np.int64)
        return events[(events >= lo) & (events < hi)]

    def _apply_fault(
        self, emg: np.ndarray, index: np.ndarray, channel: int, fault: FaultConfig
    ) -> None:
        if len(index) == 0:
            return
        mask = self._fault_mask(index, fault)
        if not mask.any():
            return
        if fault.kind == "flat":
            emg[mask, channel] = 0.0
            return
        if fault.kind == "railed":
            cycles = (index[mask] * self.config.hum.frequency_hz / self.rate_hz) % 1.0
            swing = 20.0 * fault.amplitude_uv * np.sin(2 * np.pi * cycles)
            emg[mask, channel] = np.clip(swing, -fault.amplitude_uv, fault.amplitude_uv)
            return
        fault_no = self.config.faults.index(fault)
        event_n = max(1, round(fault.event_s * self.rate_hz))
        tail = 5 * event_n if fault.kind == "spikes" else event_n
        first, last = int(index[0]), int(index[-1]) + 1
        onsets = self._events(fault_no, first - tail, last, fault)
        onsets = onsets[self._fault_mask(onsets, fault)]
        for onset in onsets:
            lo, hi = max(onset, first), min(onset + tail, last)
            if lo >= hi:
                continue
            rows = np.arange(lo, hi) - first
            if fault.kind == "dropout":
                emg[rows, channel] = np.nan
            else:
                rng = np.random.default_rng([self._fault_key, fault_no, int(onset)])
                sign = 1.0 if rng.random() < 0.5 else -1.0
                decay = np.exp(-(np.arange(lo, hi) - onset) / event_n)
                emg[rows, channel] += sign * fault.amplitude_uv * decay

    def _block_noise(self, fault_no: int, lo: int, hi: int, width: int) -> np.ndarray:
        """``(hi - lo, width)`` unit white noise for samples ``[lo, hi)`` of fault ``fault_no``,
        drawn per :data:`FAULT_BLOCK_S` block from its own seed: the same however chunked."""
        block = round(FAULT_BLOCK_S * self.rate_hz)
        first, last = lo // block, (hi - 1) // block
        noise = np.concatenate([self._noise_block(fault_no, b, block, width)
                                for b in range(first, last + 1)])  # fmt: skip
        return noise[lo - first * block : hi - first * block]

    def _noise_block(self, fault_no: int, b: int, block: int, width: int) -> np.ndarray:
        """Block ``b`` of fault ``fault_no``'s noise; the last one per fault is kept, so small
        chunks do not draw a whole block each."""
        cached = self._noise_cache.get(fault_no)
        if cached is None or cached[0] != b:
            rng = np.random.default_rng([self._fault_key, fault_no, b, _NOISE_WORD])
            cached = (b, rng.standard_normal((block, width)))
            self._noise_cache[fault_no] = cached
        return cached[1]

    def _fault_hum(self, index: np.ndarray, fault_no: int, amplitude_uv: float) -> np.ndarray:
        """``(n,)`` a fault's own mains hum: fundamental ``amplitude_uv``, seeded random phase,
        :class:`HumConfig` frequency and relative harmonics (phase from the integer index)."""
        hum = self.config.hum
        phase = self._fault_phase[fault_no]
        rel = np.array([1.0, *hum.harmonics])
        cycles = (index * hum.frequency_hz / self.rate_hz) % 1.0
        arg = self._hum_harmonics[None, :] * (2 * np.pi * cycles[:, None] + phase)
        return amplitude_uv * (np.sin(arg) @ rel)

    def _apply_contact_fault(
        self, emg: np.ndarray, index: np.ndarray, channel: int, fault: FaultConfig, fault_no: int
    ) -> None:
        """``hum``, ``bridge``, ``lifting`` (models: module docstring), in place on ``emg``."""
        mask = self._fault_mask(index, fault) if len(index) else np.zeros(0, bool)
        if not mask.any():
            return
        rows = np.flatnonzero(mask)  # the window is one interval: rows are contiguous
        at = index[rows]
        lo, hi = int(at[0]), int(at[-1]) + 1
        if fault.kind == "hum":
            emg[rows, channel] += self._fault_hum(at, fault_no, fault.amplitude_uv)
        elif fault.kind == "bridge":
            pair = np.array([channel, self.scheme.index(fault.partner or "")])
            mean = emg[np.ix_(rows, pair)].mean(axis=1, keepdims=True)
            own = self.config.amplifier_noise_uv * self._block_noise(fault_no, lo, hi, 2)
            emg[np.ix_(rows, pair)] = mean + own
        else:  # lifting
            start, _ = self._window(fault)
            lifted = np.clip((at - start) / (fault.ramp_s * self.rate_hz), 0.0, 1.0)
            open_input = fault.noise_uv * self._block_noise(fault_no, lo, hi, 1)[:, 0]
            open_input += self._fault_hum(at, fault_no, fault.amplitude_uv)
            emg[rows, channel] = (1.0 - lifted) * emg[rows, channel] + lifted * open_input
