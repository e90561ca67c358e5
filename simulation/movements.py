"""Muscle activation patterns per movement and the timed movement scripts the simulator follows.

The library (``configs/movements.toml``) gives, for each functional movement and basic emotion of
the EIFER protocol, a 0..1 level per muscle (sources in the file header). A :class:`MovementScript`
is a sorted list of timed repetitions; :meth:`MovementScript.activation` turns it into per-muscle
activation curves with raised-cosine onset/offset ramps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from configs import config_path
from streaming.config import Config, load_toml, validate

__all__ = [
    "EMOTIONS",
    "FUNCTIONAL_MOVEMENTS",
    "LiveScript",
    "MovementEvent",
    "MovementLibrary",
    "MovementScript",
    "Muscle",
    "load_movements",
]

# EIFER protocol order (shared/EIFER.md, "Recording setup").
FUNCTIONAL_MOVEMENTS = (
    "Face-At-Rest",
    "Forehead-Raise",
    "Eye-Gentle",
    "Eye-Tight",
    "Smile-Closed",
    "Smile-Open",
    "Nose-Wrinkler",
    "Cheeks-Blow",
    "Lip-Pucker",
    "Snarl",
    "Depress-Lip",
)
EMOTIONS = ("angry", "disgusted", "fearful", "happy", "sad", "surprised")


class Muscle(Config):
    """One muscle: its action units, electrode site and RMS at full contraction."""

    action_units: list[int] = []
    position: tuple[float, float]  # right-side site, frontal-view frame of configs/electrodes
    max_uv: float = Field(gt=0)  # RMS at full contraction


class Movement(Config):
    kind: Literal["functional", "emotion", "custom"] = "custom"
    action_units: list[int] = []
    levels: dict[str, float] = {}


class MovementLibrary(Config):
    """Muscles (with sites and full-contraction RMS) and the level of each muscle per movement."""

    muscles: dict[str, Muscle] = Field(min_length=1)
    movements: dict[str, Movement] = Field(min_length=1)

    @model_validator(mode="after")
    def _levels_known(self) -> MovementLibrary:
        for name, movement in self.movements.items():
            for muscle, level in movement.levels.items():
                if muscle not in self.muscles:
                    raise ValueError(
                        f"movement {name!r}: unknown muscle {muscle!r}; "
                        f"muscles: {sorted(self.muscles)}"
                    )
                if not 0.0 <= level <= 1.0:
                    raise ValueError(f"movement {name!r}: level of {muscle} = {level} not in 0..1")
        return self

    @property
    def muscle_names(self) -> list[str]:
        return list(self.muscles)

    def levels(self, movement: str) -> np.ndarray:
        """``(n_muscles,)`` float64 levels of ``movement`` in :attr:`muscle_names` order."""
        if movement not in self.movements:
            raise KeyError(f"unknown movement {movement!r}; known: {sorted(self.movements)}")
        table = self.movements[movement].levels
        return np.array([table.get(m, 0.0) for m in self.muscles], dtype=np.float64)


def load_movements(path: str | Path | None = None) -> MovementLibrary:
    """The movement library (default: the shipped ``configs/movements.toml``)."""
    path = Path(path) if path is not None else config_path("movements.toml")
    return validate(MovementLibrary, load_toml(path), str(path))


@dataclass(frozen=True)
class MovementEvent:
    """One performed repetition: ``movement`` held from ``start_s`` for ``duration_s``."""

    movement: str
    start_s: float
    duration_s: float
    repetition: int = 1
    intensity: float = 1.0  # scales the movement's levels (repetitions are never identical)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def _ramp(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 over x in [0, 1]."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


@dataclass(frozen=True)
class MovementScript:
    """Timed movement repetitions, sorted by start; ``duration_s`` includes a closing rest."""

    events: tuple[MovementEvent, ...]
    duration_s: float
    ramp_s: float = 0.3

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"script duration must be > 0 s, got {self.duration_s}")
        if self.ramp_s < 0:
            raise ValueError(f"ramp_s must be >= 0, got {self.ramp_s}")
        for event in self.events:
            if event.duration_s <= 0 or event.start_s < 0:
                raise ValueError(f"event {event} needs start_s >= 0 and duration_s > 0")

    @classmethod
    def from_list(
        cls,
        items: Iterable[Sequence[object]],
        *,
        ramp_s: float = 0.3,
        tail_s: float = 1.0,
    ) -> MovementScript:
        """A custom script from ``(movement, start_s, duration_s[, repetition])`` items."""
        events = []
        for item in items:
            movement, start_s, duration_s, *rest = item
            repetition = int(rest[0]) if rest else 1  # type: ignore[call-overload]
            events.append(
                MovementEvent(str(movement), float(start_s), float(duration_s), repetition)  # type: ignore[arg-type]
            )
        events.sort(key=lambda e: e.start_s)
        end = max((e.end_s for e in events), default=0.0) + tail_s
        return cls(tuple(events), max(end, tail_s, 1e-3), ramp_s)

    @classmethod
    def from_protocol(
        cls,
        *,
        seed: int | None = 0,
        movements: Sequence[str] = FUNCTIONAL_MOVEMENTS,
        emotions: Sequence[str] = EMOTIONS,
        repetitions: int = 3,
        emotion_repetitions: int = 4,
        lead_in_s: float = 3.0,
        instruction_s: float = 3.0,
        hold_s: float = 4.0,
        pause_s: float = 3.0,
        show_s: float = 3.0,
        perform_s: float = 3.0,
        emotion_pause_s: float = 1.0,
        ramp_s: float = 0.3,
        intensity_jitter: float = 0.1,
    ) -> MovementScript:
        """The EIFER protocol: each functional movement ``repetitions`` times in order, then the
        emotions ``emotion_repetitions`` times each in a seeded random order.

        Functional trial: instruction (rest) ``instruction_s``, hold ``hold_s``, pause ``pause_s``.
        Emotion trial: a face is shown ``show_s`` (rest), then ``perform_s`` to repeat it, then
        ``emotion_pause_s``; with 3 s + 3 s the peak falls 4.5 s into the trial as in the paper
        (EIFER.md). The defaults and the emotion order for a seed are those of the protocol node
        (``configs/protocols/mimics_and_muscles.toml``, ``streaming.acquisition.protocol.trials``:
        one ``default_rng(seed).permutation`` of the emotion trials), so a simulator and a protocol
        node started together with the same seed agree on what is performed when. Each
        repetition's intensity varies by +/- ``intensity_jitter`` (its own seeded generator).
        """
        order_rng = np.random.default_rng(seed)
        intensity_rng = np.random.default_rng(None if seed is None else [seed, 1])
        events: list[MovementEvent] = []
        t = lead_in_s

        def intensity() -> float:
            return float(1.0 + intensity_jitter * intensity_rng.uniform(-1.0, 1.0))

        for movement in movements:
            for rep in range(1, repetitions + 1):
                t += instruction_s
                events.append(MovementEvent(movement, t, hold_s, rep, intensity()))
                t += hold_s + pause_s
        trials = [e for e in emotions for _ in range(emotion_repetitions)]
        order: np.ndarray | list[int] = order_rng.permutation(len(trials)) if trials else []
        counts: dict[str, int] = {}
        for i in order:
            emotion = trials[i]
            counts[emotion] = counts.get(emotion, 0) + 1
            t += show_s
            events.append(MovementEvent(emotion, t, perform_s, counts[emotion], intensity()))
            t += perform_s + emotion_pause_s
        return cls(tuple(events), max(t, 1e-3), ramp_s)

    def envelope(self, event: MovementEvent, t_s: np.ndarray) -> np.ndarray:
        """0..1 activation of one event at times ``t_s`` (raised-cosine ramps inside the hold)."""
        ramp = min(self.ramp_s, event.duration_s / 2)
        if ramp <= 0:
            return ((t_s >= event.start_s) & (t_s < event.end_s)).astype(np.float64)
        rise = _ramp((t_s - event.start_s) / ramp)
        fall = _ramp((event.end_s - t_s) / ramp)
        return np.minimum(rise, fall)

    def activation(
        self, t_s: np.ndarray, library: MovementLibrary, *, loop: bool = True
    ) -> np.ndarray:
        """``(n, n_muscles)`` activation at script times ``t_s`` (s), clipped to 0..1."""
        t = np.asarray(t_s, dtype=np.float64)
        if loop:
            t = np.mod(t, self.duration_s)
        result = np.zeros((len(t), len(library.muscles)), dtype=np.float64)
        if len(t) == 0:
            return result
        lo, hi = float(t.min()), float(t.max())
        for event in self.events:
            if event.end_s <= lo or event.start_s > hi:
                continue
            env = self.envelope(event, t)
            result += env[:, None] * (event.intensity * library.levels(event.movement))[None, :]
        return np.clip(result, 0.0, 1.0, out=result)

    def event_at(self, t_s: float, *, loop: bool = True) -> MovementEvent | None:
        """The event being performed at script time ``t_s`` (None during rest)."""
        t = t_s % self.duration_s if loop else t_s
        for event in self.events:
            if event.start_s <= t < event.end_s:
                return event
        return None


class LiveScript:
    """Movements started and stopped as they happen (e.g. from the protocol node's markers).

    ``start(movement, t_s)`` opens an event that lasts until ``stop(t_s)``; activation ramps in
    and out like :class:`MovementScript` (the ramp runs after the marker time). Not thread-safe:
    feed it from the thread that generates.
    """

    duration_s = float("inf")

    def __init__(
        self, *, ramp_s: float = 0.3, intensity_jitter: float = 0.1, seed: int | None = 0
    ) -> None:
        self.ramp_s = ramp_s
        self.intensity_jitter = intensity_jitter
        self._rng = np.random.default_rng(seed)
        self.events: list[MovementEvent] = []

    def start(self, movement: str, t_s: float, repetition: int = 1) -> None:
        """Begin ``movement`` at ``t_s`` (an open event ends first: one movement at a time)."""
        self.stop(t_s)
        intensity = float(1.0 + self.intensity_jitter * self._rng.uniform(-1.0, 1.0))
        self.events.append(MovementEvent(movement, t_s, float("inf"), repetition, intensity))

    def stop(self, t_s: float) -> None:
        """End the open event at ``t_s`` (no-op when none is open)."""
        if self.events and self.events[-1].duration_s == float("inf"):
            last = self.events[-1]
            self.events[-1] = replace(last, duration_s=max(t_s - last.start_s, 1e-3))

    def prune(self, before_s: float) -> None:
        """Forget events that ended before ``before_s`` (keeps the list short in long runs)."""
        self.events = [e for e in self.events if e.end_s + self.ramp_s >= before_s]

    def envelope(self, event: MovementEvent, t_s: np.ndarray) -> np.ndarray:
        rise = (
            _ramp((t_s - event.start_s) / self.ramp_s) if self.ramp_s > 0 else t_s >= event.start_s
        )
        if event.duration_s == float("inf"):
            return np.asarray(rise, dtype=np.float64)
        ramp = max(self.ramp_s, 1e-9)
        fall = _ramp((event.end_s + ramp - t_s) / ramp)  # ramps out after the stop
        return np.minimum(rise, fall)

    def activation(
        self, t_s: np.ndarray, library: MovementLibrary, *, loop: bool = False
    ) -> np.ndarray:
        """``(n, n_muscles)`` activation at times ``t_s`` (``loop`` is ignored)."""
        t = np.asarray(t_s, dtype=np.float64)
        result = np.zeros((len(t), len(library.muscles)), dtype=np.float64)
        if len(t) == 0:
            return result
        lo, hi = float(t.min()), float(t.max())
        for event in self.events:
            if event.end_s + self.ramp_s <= lo or event.start_s > hi:
                continue
            env = self.envelope(event, t)
            result += env[:, None] * (event.intensity * library.levels(event.movement))[None, :]
        return np.clip(result, 0.0, 1.0, out=result)

    def event_at(self, t_s: float, *, loop: bool = False) -> MovementEvent | None:
        for event in reversed(self.events):
            if event.start_s <= t_s < event.end_s:
                return event
        return None
