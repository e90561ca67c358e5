"""The replay's timing: one time base for a whole recording and which samples are due when.

Pure (no LSL, no clock): the player (:mod:`streaming.recording.replay`) asks :class:`Timeline` which
samples are due at an output time and their output stamps. The time base: a negative jump that
survives pyxdf's clock synchronisation (a clock reset without offsets) starts a new segment that
continues where the last one ended, and silences in *all* streams longer than ``max_gap_s`` are
shortened (a reboot between clock segments does not stall the replay for minutes); inter-stream
alignment is kept because every stream gets the same shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat

from streaming.config import Config
from streaming.errors import SessionFileError
from streaming.recording.session_reader import RecordedStream, Recording

__all__ = ["ReplayConfig", "Timeline", "Track", "remove_negative_jumps", "shorten_gaps"]


class ReplayConfig(Config):
    """Settings of ``eifer replay`` (``configs/nodes/replay.toml``)."""

    speed: PositiveFloat | Literal["max"] = 1.0  # 0.5..10 typical; "max" = as fast as possible
    repeat: NonNegativeInt = 1  # how many times to play; 0 = loop until stopped
    start_s: NonNegativeFloat = 0.0  # seconds into the recording where the replay starts
    stop_s: PositiveFloat | None = None  # seconds into the recording where it stops (None = end)
    streams: list[str] = []  # stream names or types to replay; empty = all
    name_suffix: str = ""  # appended to every stream name and source id (side-by-side replays)
    chunk_ms: PositiveFloat = 10.0  # push cycle; a live amplifier node sends 5-30 ms chunks
    lead_s: NonNegativeFloat = 0.2  # delay between opening the outlets and the first sample
    wait_for_consumers_s: NonNegativeFloat = 0.0  # wait this long for every outlet to be read
    max_gap_s: PositiveFloat = 5.0  # silences in all streams longer than this are shortened
    loop_gap_s: NonNegativeFloat = 0.1  # time between the end of one loop and the next start
    video_buffer_s: PositiveFloat = 5.0  # outlet buffer of video streams (frames are large)
    progress_s: PositiveFloat = 1.0  # period of the progress line
    # after the last sample, outlets stay open until their consumers have left, at most this
    # long: liblsl drops what a consumer has not yet received when its outlet closes, and at
    # speed "max" a consumer on a busy machine can be seconds behind
    drain_s: NonNegativeFloat = 5.0


# ------------------------------------------------------------------------------ time base


RESET_MIN_S = 0.5  # backward steps of jittered chunk stamps are ms; clock resets are far larger


def remove_negative_jumps(timestamps: np.ndarray, rate_hz: float) -> tuple[np.ndarray, int]:
    """Make a stream's stamps non-decreasing: after a backward jump (a clock reset not fixed by
    clock offsets) the next segment continues one sample period after the previous one.

    Returns ``(stamps, n_resets)``.
    """
    t = np.asarray(timestamps, dtype=np.float64).copy()
    if len(t) < 2:
        return t, 0
    step = 1.0 / rate_hz if rate_hz > 0 else 0.0
    # a step back smaller than RESET_MIN_S is chunk-stamp jitter (kept as recorded), not a reset
    jumps = np.flatnonzero(np.diff(t) < -RESET_MIN_S) + 1
    for i in jumps:
        t[i:] += t[i - 1] + step - t[i]
    return t, len(jumps)


def shorten_gaps(streams: Sequence[np.ndarray], max_gap_s: float) -> tuple[list[np.ndarray], float]:
    """Shorten silences common to all streams to ``max_gap_s``, shifting every stream alike.

    Returns the new stamps and the total time removed.
    """
    non_empty = [t for t in streams if len(t)]
    if not non_empty:
        return [np.asarray(t, dtype=np.float64) for t in streams], 0.0
    union = np.unique(np.concatenate(non_empty))
    gaps = np.diff(union)
    where = np.flatnonzero(gaps > max_gap_s)
    if not len(where):
        return [np.asarray(t, dtype=np.float64) for t in streams], 0.0
    ends = union[where]  # last stamp before each long gap
    cut = gaps[where] - max_gap_s
    cumulative = np.cumsum(cut)
    result = []
    for t in streams:
        t = np.asarray(t, dtype=np.float64)
        k = np.searchsorted(ends, t, side="left")  # how many gaps end strictly before t
        shift = np.where(k > 0, cumulative[np.maximum(k - 1, 0)], 0.0)
        result.append(t - shift)
    return result, float(cumulative[-1])


# ------------------------------------------------------------------------------ timeline


@dataclass
class Track:
    """A stream as the player plays it: the chosen sample range and its recording times."""

    stream: RecordedStream
    times: np.ndarray  # (n,) recording times of the samples in [start, stop]
    first: int  # index of times[0] in stream.timestamps


class Timeline:
    """Which samples are due at an output time, and their output stamps (pure, no LSL).

    Recording time ``t`` in loop ``k`` maps to ``base + k * loop_s + (t - start) / speed``;
    ``speed = inf`` gives the 1x stamps and ``due`` everything up to the virtual time the
    caller advances.
    """

    def __init__(
        self,
        recording: Recording,
        config: ReplayConfig,
    ) -> None:
        chosen = [s.matches(config.streams) for s in recording.streams]
        if config.streams and not any(chosen):
            listed = [(s.out_name, s.out_type) for s in recording.streams]
            raise SessionFileError(
                f"{recording.path}: no stream named or typed {config.streams}; streams: {listed}"
            )
        # one time base for the whole recording, whatever is chosen: offsets and alignment
        # mean the same in every replay of it
        fixed = []
        self.resets = 0
        for s in recording.streams:
            t, resets = remove_negative_jumps(s.timestamps, s.rate_hz)
            self.resets += resets
            fixed.append(t)
        fixed, self.removed_gap_s = shorten_gaps(fixed, config.max_gap_s)
        if not any(len(t) for t, c in zip(fixed, chosen, strict=True) if c):
            raise SessionFileError(f"{recording.path}: the chosen streams hold no samples")
        origin = min(t[0] for t in fixed if len(t))
        last = max(t[-1] for t, c in zip(fixed, chosen, strict=True) if c and len(t))
        self.start = origin + config.start_s
        self.stop = last if config.stop_s is None else min(last, origin + config.stop_s)
        if self.stop < self.start:
            raise SessionFileError(
                f"{recording.path}: start_s={config.start_s} is past the end of the recording "
                f"({last - origin:.3f} s long)"
            )
        self.duration_s = self.stop - self.start
        self.speed = float("inf") if config.speed == "max" else float(config.speed)
        self.repeat = config.repeat
        self.loop_gap_s = config.loop_gap_s
        self.tracks = []
        for s, t, c in zip(recording.streams, fixed, chosen, strict=True):
            if not c:
                continue
            i0 = int(np.searchsorted(t, self.start, side="left"))
            i1 = int(np.searchsorted(t, self.stop, side="right"))
            self.tracks.append(Track(s, t[i0:i1], i0))

    @property
    def stamp_scale(self) -> float:
        """Output seconds per recording second (1 for as-fast-as-possible)."""
        return 1.0 if np.isinf(self.speed) else 1.0 / self.speed

    @property
    def loop_s(self) -> float:
        """Output seconds from the start of one loop to the start of the next."""
        return self.duration_s * self.stamp_scale + self.loop_gap_s

    def stamps(self, track: Track, lo: int, hi: int, base: float, loop: int) -> np.ndarray:
        """Output stamps of ``track.times[lo:hi]`` in loop ``loop``."""
        return base + loop * self.loop_s + (track.times[lo:hi] - self.start) * self.stamp_scale

    def due(self, track: Track, elapsed_s: float) -> int:
        """End index (exclusive) of the samples due ``elapsed_s`` output seconds into a loop."""
        t = self.start + elapsed_s / self.stamp_scale
        return int(np.searchsorted(track.times, t, side="right"))
