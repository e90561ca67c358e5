"""A recording protocol: its schedule, its markers and the runner that plays it against a clock.

The protocol (``configs/protocols/mimics_and_muscles.toml`` by default, the EIFER "Mimics and
Muscles" sequence) is a list of blocks; each block repeats movements as trials of three phases:
``show`` (instruction on screen, face at rest), ``perform`` and ``pause``. Played by
``eifer node protocol`` (:mod:`nodes.protocol`, which wires the outputs to LSL and the bus), it

- pushes string markers (grammar: :mod:`streaming.acquisition.markers`) on the LSL stream
  ``Markers`` (type ``Markers``), stamped with the planned LSL time of each event:
  ``protocol:start``, ``show:<movement>:<rep>``, ``start:<movement>:<rep>`` /
  ``stop:<movement>:<rep>`` around the perform phase, ``protocol:end`` (``protocol:abort`` after a
  stop, with the open trial's ``stop`` first, so every ``start`` has its ``stop``);
- publishes the current instruction on the bus topic ``instruction`` at every phase change and
  every ``instruction_period_s`` (fields: ``text``, ``movement``, ``repetition``, ``phase``,
  ``remaining_s``, ``index``, ``total``).

``--speed`` runs the whole schedule faster (tests, rehearsals); stamps follow the fast clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from configs import config_path
from streaming.acquisition.markers import (
    PROTOCOL_ABORT,
    PROTOCOL_END,
    PROTOCOL_START,
    TrialMarker,
    parse_trial_marker,
    trial_marker,
)
from streaming.addresses import PROTOCOL_ADDRESS, PublisherKeys
from streaming.config import Config, load_config

__all__ = [
    "Block",
    "ProtocolConfig",
    "ProtocolRunner",
    "Step",
    "build_markers",
    "build_schedule",
    "instruction_fields",
    "load_protocol",
    "trials",
]

log = logging.getLogger(__name__)

Phase = Literal["show", "perform", "pause", "done"]


class Block(Config):
    """Movements repeated as trials: in order (each movement's repetitions together) or shuffled."""

    name: str = ""
    order: Literal["sequential", "random"] = "sequential"
    repetitions: PositiveInt = 1
    show_s: NonNegativeFloat = 3.0
    perform_s: PositiveFloat = 3.0
    pause_s: NonNegativeFloat = 3.0
    movements: list[str] = Field(min_length=1)


class ProtocolConfig(Config):
    """A recording protocol plus where the node sends markers and instructions."""

    name: str = "protocol"
    seed: int = 0
    lead_in_s: NonNegativeFloat = 3.0
    stream_name: str = "Markers"
    source_id: str = "eifer-protocol"
    bus: str = PROTOCOL_ADDRESS
    bus_bind: bool = True
    bus_curve: PublisherKeys = Field(default_factory=PublisherKeys)  # CURVE (bus_bind only)
    instruction_period_s: PositiveFloat = 1.0
    wait_for_consumers_s: NonNegativeFloat = 0.0
    blocks: list[Block] = Field(min_length=1)
    texts: dict[str, str] = {}


@dataclass(frozen=True)
class Step:
    """One phase of one trial, in protocol seconds from the start."""

    phase: Phase
    movement: str
    repetition: int
    index: int  # 1-based trial number
    total: int
    start_s: float
    duration_s: float
    text: str

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def trials(config: ProtocolConfig) -> list[tuple[str, int, Block]]:
    """``(movement, repetition, block)`` in protocol order; random blocks seeded by ``seed``."""
    rng = np.random.default_rng(config.seed)
    result: list[tuple[str, int, Block]] = []
    for block in config.blocks:
        items = [(m, r) for m in block.movements for r in range(1, block.repetitions + 1)]
        if block.order == "random":
            shuffled = [items[i] for i in rng.permutation(len(items))]
            counts: dict[str, int] = {}
            items = []
            for movement, _ in shuffled:  # repetitions numbered in the order they are shown
                counts[movement] = counts.get(movement, 0) + 1
                items.append((movement, counts[movement]))
        result.extend((m, r, block) for m, r in items)
    return result


def build_schedule(config: ProtocolConfig) -> list[Step]:
    """Every phase of every trial, back to back after the lead-in, then a ``done`` step."""
    items = trials(config)
    total = len(items)
    steps: list[Step] = []
    if config.lead_in_s > 0:
        steps.append(Step("pause", "", 0, 0, total, 0.0, config.lead_in_s, "Get ready"))
    t = config.lead_in_s
    for index, (movement, rep, block) in enumerate(items, start=1):
        text = config.texts.get(movement, movement)
        for phase, duration in (
            ("show", block.show_s),
            ("perform", block.perform_s),
            ("pause", block.pause_s),
        ):
            if duration > 0:
                steps.append(Step(phase, movement, rep, index, total, t, duration, text))  # type: ignore[arg-type]
                t += duration
    steps.append(Step("done", "", 0, total, total, t, 0.0, "Thank you, the recording is complete"))
    return steps


def build_markers(steps: list[Step]) -> list[tuple[float, str]]:
    """``(protocol seconds, marker)`` for a schedule."""
    markers: list[tuple[float, str]] = [(0.0, PROTOCOL_START)]
    for step in steps:
        if step.phase == "show":
            markers.append((step.start_s, trial_marker("show", step.movement, step.repetition)))
        elif step.phase == "perform":
            markers.append((step.start_s, trial_marker("start", step.movement, step.repetition)))
            markers.append((step.end_s, trial_marker("stop", step.movement, step.repetition)))
        elif step.phase == "done":
            markers.append((step.start_s, PROTOCOL_END))
    return markers


def instruction_fields(step: Step, remaining_s: float) -> dict[str, Any]:
    """The ``instruction`` bus message for ``step`` with ``remaining_s`` left (DESIGN.md)."""
    return {
        "text": step.text,
        "movement": step.movement,
        "repetition": step.repetition,
        "phase": step.phase,
        "remaining_s": float(max(0.0, remaining_s)),
        "index": step.index,
        "total": step.total,
    }


class ProtocolRunner:
    """Plays a schedule against a clock: markers to ``push_marker``, instructions to ``publish``.

    ``push_marker(text, lsl_time)`` and ``publish(fields, lsl_time)`` are the outputs; the node
    wires them to an LSL outlet and a bus publisher, tests may wire them to lists.

    Parameters
    ----------
    config : ProtocolConfig
        The protocol: its blocks of movements, lead-in and instruction period.
    push_marker : callable (text, lsl_time)
        Receives every marker (:mod:`streaming.acquisition.markers` grammar).
    publish : callable (fields, lsl_time)
        Receives the ``instruction`` messages (:func:`instruction_fields`).
    speed : float
        Time scale (> 0): 2 plays the protocol twice as fast (tests, rehearsal).
    clock : callable | None
        The time source in seconds (default ``pylsl.local_clock``).
    """

    def __init__(
        self,
        config: ProtocolConfig,
        push_marker: Callable[[str, float], None],
        publish: Callable[[dict[str, Any], float], None],
        *,
        speed: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.config = config
        self.steps = build_schedule(config)
        self.markers = build_markers(self.steps)
        self.push_marker, self.publish, self.speed = push_marker, publish, speed
        if clock is None:
            import pylsl

            clock = pylsl.local_clock
        self.clock = clock
        self._stop = threading.Event()
        self.emitted: list[str] = []

    def stop(self) -> None:
        self._stop.set()

    @property
    def duration_s(self) -> float:
        return self.steps[-1].start_s / self.speed

    def run(self) -> bool:
        """Play to the end (True) or until :meth:`stop` (False, with ``protocol:abort``)."""
        t0 = self.clock()
        next_marker = 0
        current = -1
        next_instruction = 0.0
        open_trial: TrialMarker | None = None
        period = self.config.instruction_period_s
        while True:
            elapsed = (self.clock() - t0) * self.speed  # protocol seconds
            while next_marker < len(self.markers) and self.markers[next_marker][0] <= elapsed:
                at, text = self.markers[next_marker]
                self._emit(text, t0 + at / self.speed)  # the planned time, not the loop's
                marker = parse_trial_marker(text)
                if marker is not None and marker.kind == "start":
                    open_trial = marker
                elif marker is not None and marker.kind == "stop":
                    open_trial = None
                next_marker += 1
            step_index = current
            while (
                step_index + 1 < len(self.steps) and self.steps[step_index + 1].start_s <= elapsed
            ):
                step_index += 1
            now = self.clock()
            if step_index >= 0 and (step_index != current or now >= next_instruction):
                step = self.steps[step_index]
                self.publish(instruction_fields(step, (step.end_s - elapsed) / self.speed), now)
                next_instruction = now + period
            current = step_index
            if next_marker >= len(self.markers):
                return True
            upcoming = [self.markers[next_marker][0]]
            if current + 1 < len(self.steps):
                upcoming.append(self.steps[current + 1].start_s)
            wait = min((min(upcoming) - elapsed) / self.speed, next_instruction - now, 0.05)
            if self._stop.wait(max(0.0, wait)):
                now = self.clock()
                if open_trial is not None:
                    self._emit(
                        trial_marker("stop", open_trial.movement, open_trial.repetition), now
                    )
                self._emit(PROTOCOL_ABORT, now)
                return False

    def _emit(self, text: str, t: float) -> None:
        self.push_marker(text, t)
        self.emitted.append(text)
        log.info("marker %s", text)


def load_protocol(path: str | Path | None, overrides: Sequence[str] = ()) -> ProtocolConfig:
    """A protocol file (default: the shipped Mimics-and-Muscles protocol) with overrides."""
    path = path if path is not None else config_path("protocols", "mimics_and_muscles.toml")
    return load_config(ProtocolConfig, path, overrides)
