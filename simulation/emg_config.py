"""Settings of the EMG simulator (:mod:`simulation.emg`, whose docstring gives the
signal model they parametrise): signal, mains hum, electrode faults, movement script.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simulation.movements import EMOTIONS, FUNCTIONAL_MOVEMENTS
from streaming.config import Config

__all__ = [
    "FAULT_BLOCK_S",
    "FAULT_CODES",
    "FaultConfig",
    "FaultKind",
    "HumConfig",
    "ScriptConfig",
    "SimulatorConfig",
    "fault_kinds",
]

FAULT_BLOCK_S = 1.0  # fault events and noise are drawn per block of this length (chunking-free)

FaultKind = Literal["flat", "railed", "spikes", "dropout", "hum", "bridge", "lifting", "misplaced"]
# One bit per fault kind: the truth announces the faults active on a channel as the sum (bitwise
# OR) of their codes (simulation.emg: EmgSimulator.fault_codes; the truth stream's fault_<channel>
# columns). Never renumber: recordings keep these numbers.
FAULT_CODES: dict[str, int] = {
    "flat": 1,
    "railed": 2,
    "spikes": 4,
    "dropout": 8,
    "hum": 16,
    "bridge": 32,
    "lifting": 64,
    "misplaced": 128,
}


def fault_kinds(code: int) -> tuple[str, ...]:
    """The fault kinds a :data:`FAULT_CODES` bitmask holds, in table order (0: none)."""
    return tuple(kind for kind, bit in FAULT_CODES.items() if int(code) & bit)


class HumConfig(Config):
    """Power-line interference: fundamental amplitude (uV) and harmonics relative to it."""

    frequency_hz: float = Field(50.0, gt=0)
    amplitude_uv: float = Field(2.0, ge=0)
    harmonics: list[float] = [0.2, 0.4, 0.1]  # 2nd, 3rd, 4th ... relative to the fundamental
    monopolar_factor: float = Field(5.0, ge=0)


class FaultConfig(Config):
    """An electrode fault on one channel from ``start_s`` for ``duration_s`` (None = forever).

    - ``flat``: the channel reads 0 (broken lead, dead amplifier input);
    - ``railed``: disconnected electrode: mains swamps the input and it saturates at
      +/- ``amplitude_uv`` (a square-ish wave at the hum frequency);
    - ``spikes``: motion artefacts at ``rate_hz`` (Poisson): a jump of +/- ``amplitude_uv``
      decaying with time constant ``event_s``;
    - ``dropout``: NaN runs of ``event_s`` at ``rate_hz`` (lost amplifier packets);
    - ``hum``: a poor contact: mains hum of fundamental ``amplitude_uv`` (harmonics and frequency
      as the simulator's :class:`HumConfig`) added to the channel, far above the shared hum;
    - ``bridge``: gel bridge between ``channel`` and ``partner``: both carry one signal (their
      mean) plus their own amplifier noise;
    - ``lifting``: the electrode comes off over ``ramp_s``: its EMG fades to 0 while broadband
      noise (to ``noise_uv`` RMS) and hum (to ``amplitude_uv``) rise, then it stays an open
      input until the fault ends;
    - ``misplaced``: the electrode sits off its muscle (glued beside it, or the muscle map is
      wrong for this face): the channel keeps its resting tone, amplifier noise and hum but
      carries no muscle activity, so it stays at rest in the movements that should drive it.

    The models and their sources: :mod:`simulation.emg`. Faults apply in list order.
    """

    channel: str
    kind: FaultKind
    start_s: float = Field(0.0, ge=0)
    duration_s: float | None = Field(None, gt=0)
    rate_hz: float = Field(2.0, gt=0)
    amplitude_uv: float = Field(500.0, gt=0)
    event_s: float = Field(0.05, gt=0, le=FAULT_BLOCK_S / 5)
    partner: str | None = None  # bridge: the channel the gel joins ``channel`` to
    ramp_s: float = Field(10.0, gt=0)  # lifting: time from full contact to an open input
    noise_uv: float = Field(50.0, gt=0)  # lifting: broadband noise RMS of the open input

    @model_validator(mode="after")
    def _partner(self) -> FaultConfig:
        if self.kind == "bridge" and self.partner is None:
            raise ValueError(
                f"bridge fault on {self.channel!r} needs partner = <the bridged channel>"
            )
        if self.kind != "bridge" and self.partner is not None:
            raise ValueError(f"partner is for bridge faults only, not {self.kind!r}")
        if self.partner == self.channel:
            raise ValueError(
                f"bridge fault: partner {self.partner!r} must be another channel than "
                f"channel {self.channel!r}"
            )
        return self


class ScriptConfig(Config):
    """Which movements the simulated participant performs."""

    # protocol: built in (emg.build_script); custom: `events`; rest; markers: follow a protocol
    # node's LSL marker stream live (start:<movement>:<rep> / stop:...; see nodes/protocol.py)
    kind: Literal["protocol", "custom", "rest", "markers"] = "protocol"
    loop: bool = True
    markers_stream: str = "Markers"
    markers_source_id: str | None = None
    seed: int | None = None  # None: the simulator's seed
    events: list[tuple[str, float, float]] = []  # custom: (movement, start_s, duration_s)
    movements: list[str] = list(FUNCTIONAL_MOVEMENTS)
    emotions: list[str] = list(EMOTIONS)
    repetitions: int = Field(3, ge=0)
    emotion_repetitions: int = Field(4, ge=0)
    # defaults = configs/protocols/mimics_and_muscles.toml (the protocol node's timing)
    lead_in_s: float = Field(3.0, ge=0)
    instruction_s: float = Field(3.0, ge=0)
    hold_s: float = Field(4.0, gt=0)
    pause_s: float = Field(3.0, ge=0)
    show_s: float = Field(3.0, ge=0)
    perform_s: float = Field(3.0, gt=0)
    emotion_pause_s: float = Field(1.0, ge=0)
    ramp_s: float = Field(0.3, ge=0)
    intensity_jitter: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _custom_has_events(self) -> ScriptConfig:
        if self.kind == "custom" and not self.events:
            raise ValueError(
                "script kind 'custom' needs events = [[movement, start_s, duration_s]]"
            )
        return self


class SimulatorConfig(Config):
    """The simulated EMG: rate, electrode scheme, movement script, signal model and artefacts."""

    scheme: str = "fridlund"
    movements_file: str | None = None  # default: the shipped configs/movements.toml
    rate_hz: float = Field(4096.0, gt=0)
    seed: int = 0
    band_hz: tuple[float, float] = (20.0, 450.0)
    band_order: int = Field(2, ge=1, le=8)  # scipy butter N; the band-pass has order 2N
    spectrum_hz: tuple[float, float] | None = (60.0, 120.0)  # Shwedyk (fl, fh); None: flat band
    amplitude_cv: float = Field(0.1, ge=0, lt=1)
    fluctuation_hz: float = Field(2.0, gt=0)
    rest_uv: float = Field(3.0, ge=0)
    amplifier_noise_uv: float = Field(0.5, ge=0)
    dc_offset_uv: float = 0.0
    crosstalk: float = Field(0.15, ge=0, le=1)
    crosstalk_length: float = Field(0.15, gt=0)  # face units (configs/electrodes frame)
    left_gain: float = Field(1.0, ge=0)  # < 1 weakens the participant's left side (palsy)
    right_gain: float = Field(1.0, ge=0)
    hum: HumConfig = HumConfig()
    script: ScriptConfig = ScriptConfig()
    faults: list[FaultConfig] = []

    @model_validator(mode="after")
    def _band(self) -> SimulatorConfig:
        lo, hi = self.band_hz
        if not 0 < lo < hi < self.rate_hz / 2:
            raise ValueError(f"band_hz {self.band_hz} must satisfy 0 < low < high < rate_hz/2")
        if self.spectrum_hz is not None and min(self.spectrum_hz) <= 0:
            raise ValueError(f"spectrum_hz {self.spectrum_hz} must be positive")
        if not self.fluctuation_hz < self.rate_hz / 2:
            raise ValueError(f"fluctuation_hz {self.fluctuation_hz} must be < rate_hz/2")
        return self
