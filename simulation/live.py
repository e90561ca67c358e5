"""The EMG simulator streamed live: real-time pacing, amplifier clock emulation, ground truth.

:class:`~simulation.EmgSimulator` is paced against ``pylsl.local_clock()`` (sample k
is due at ``t0 + k / rate``, so no drift accumulates), in chunks (default 32 samples = 7.8 ms at
4096 Hz). Optional clock offset and chunk-stamp jitter emulate an amplifier on another clock
behind USB. The ground truth goes out on the truth stream (``<name>-truth``): one row per chunk,
``sample_index`` of the chunk's first sample then each muscle's activation, stamped with the
exact true LSL time of that first sample (no offset, no jitter), then (appended, so the columns
before keep their places) one ``fault_<channel>`` column per EMG channel: the bitwise OR, over the
chunk's samples, of the :data:`~simulation.emg_config.FAULT_CODES` of the electrode faults active
on that channel (0: clean; a bridge counts on both its channels). The stream's ``desc`` holds the
code table (``fault_codes``) and every configured fault's exact sample window
(``faults/fault``: ``kind``, ``channels``, ``start_sample``, ``stop_sample``, "" = never stops),
so a scorer can place a fault's start to the sample. With
``simulator.script.kind = "markers"`` the simulated participant performs what the protocol node
instructs, live, from its ``start:``/``stop:`` markers (:mod:`.marker_follower`).
"""

from __future__ import annotations

import logging
import math
import threading
import time

import numpy as np

from simulation.emg import EmgSimulator, SimulatorConfig
from simulation.emg_config import FAULT_CODES
from simulation.marker_follower import MarkerFollower
from simulation.movements import LiveScript
from streaming.acquisition.emg_outlet import (
    OutputConfig,
    StatusLine,
    StopEvent,
    TimingConfig,
    contract_channels,
    counter_column,
    counter_desc,
)

__all__ = ["FAULT_COLUMN_PREFIX", "chunk_fault_codes", "stream_simulator", "truth_labels"]

log = logging.getLogger("eifer.node.emg")

GENERATE_BLOCK_S = 0.125  # generated at a time: cheap per call, and a marker is late by < this
FAULT_COLUMN_PREFIX = "fault_"  # truth columns fault_<channel>: FAULT_CODES bits per chunk


def truth_labels(sim: EmgSimulator) -> list[str]:
    """The truth stream's columns: ``sample_index``, activation per muscle and side, then
    ``fault_<channel>`` per EMG channel (appended: the earlier columns keep their places)."""
    return [
        "sample_index",
        *sim.muscle_labels,
        *(f"{FAULT_COLUMN_PREFIX}{label}" for label in sim.labels),
    ]


def chunk_fault_codes(sim: EmgSimulator, first: int, n_chunks: int, chunk: int) -> np.ndarray:
    """``(n_chunks, n_channels)``: per chunk from sample ``first`` on, the OR of the fault codes
    of its samples (:meth:`EmgSimulator.fault_codes`), so no fault shorter than a chunk is lost."""
    codes = sim.fault_codes(first, first + n_chunks * chunk)
    return np.bitwise_or.reduce(codes.reshape(n_chunks, chunk, -1), axis=1)


def _faults_desc(sim: EmgSimulator) -> dict[str, object]:
    """The truth stream's ``desc`` entries announcing the configured faults."""
    return {
        "fault_codes": dict(FAULT_CODES),
        "fault_columns": f"{FAULT_COLUMN_PREFIX}<channel>: OR of the fault_codes active on the "
        "channel at any sample of the chunk; 0 clean",
        "faults": {
            "fault": [
                {"kind": w.kind, "channels": ",".join(w.channels), "start_sample": w.start,
                 "stop_sample": "" if w.stop is None else w.stop}
                for w in sim.fault_windows()
            ]
        },
    }  # fmt: skip


def stream_simulator(
    simulator: SimulatorConfig,
    output: OutputConfig,
    timing: TimingConfig,
    source_id: str,
    stop: StopEvent | None = None,
    duration_s: float | None = None,
) -> int:
    """Stream the simulator in real time until ``stop`` is set or ``duration_s`` has passed.

    Parameters
    ----------
    simulator : SimulatorConfig
        The simulated signal: rate, electrode scheme, movement script, artefacts.
    output : OutputConfig
        The published ``EMG`` stream (name, chunk size, counter channel) and its truth stream.
    timing : TimingConfig
        Amplifier clock emulation (start delay, clock offset, chunk-stamp jitter).
    source_id : str
        LSL source id of the outlet.
    stop : StopEvent | None
        Ends streaming when set (e.g. by a signal handler).
    duration_s : float | None
        Ends streaming after this many seconds; None: until ``stop``.

    Returns
    -------
    int
        The number of samples pushed.
    """
    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    sim = EmgSimulator(simulator)
    follower: MarkerFollower | None = None
    follow_stop = threading.Event()
    if isinstance(sim.script, LiveScript):
        script_cfg = simulator.script
        follower = MarkerFollower(
            script_cfg.markers_stream, script_cfg.markers_source_id, follow_stop
        )
    rate = sim.rate_hz
    chunk = output.chunk_samples
    labels, units, types = contract_channels(output, sim.labels)
    t0 = pylsl.local_clock() + timing.start_delay_s  # true LSL time of sample 0
    truth_name = output.truth_stream_name
    desc = {
        "manufacturer": "EIFER live",
        "model": "EmgSimulator",
        "scheme": sim.scheme.name,
        "montage": sim.scheme.montage,
        **counter_desc(output),
        "simulation": {
            "t0_lsl": repr(t0),
            "clock_offset_s": repr(timing.clock_offset_s),
            "jitter_s": repr(timing.jitter_s),
            "jitter": timing.jitter,
            "seed": sim.config.seed,
            "script": sim.config.script.kind,
            "truth_stream": truth_name if output.truth else "",
        },
    }
    info = stream_info(
        output.name, output.type, len(labels), rate, "float32", source_id,
        channel_labels=labels, channel_unit=units, channel_type=types, desc=desc,
    )  # fmt: skip
    truth_outlet = None
    if output.truth:
        columns = truth_labels(sim)
        truth_info = stream_info(
            truth_name, output.truth_type, len(columns), rate / chunk, "double64",
            f"{source_id}-truth", channel_labels=columns,
            desc={"of_stream": output.name, "chunk_samples": chunk, "t0_lsl": repr(t0),
                  "stamp": "true LSL time of the chunk's first sample (no offset, no jitter)",
                  **_faults_desc(sim)},
        )  # fmt: skip
        truth_outlet = ChunkOutlet(truth_info, max_buffered_s=output.max_buffered_s)
    outlet = ChunkOutlet(info, chunk_size=chunk, max_buffered_s=output.max_buffered_s)
    jitter_rng = np.random.default_rng([sim.config.seed, 1])
    block = chunk * max(1, round(GENERATE_BLOCK_S * rate / chunk))
    status = StatusLine(output.name, timing.status_interval_s, pylsl.local_clock)
    log.info(
        "simulating %d-channel %s EMG at %g Hz as %r (source_id %r), chunks of %d, t0 %.6f",
        sim.n_channels, sim.scheme.name, rate, output.name, source_id, chunk, t0,
    )  # fmt: skip
    if 2 * timing.jitter_s > chunk / rate:
        log.warning(
            "jitter_s %.4g s exceeds half a chunk (%.4g s): chunk stamps may go backwards",
            timing.jitter_s, chunk / rate / 2,
        )  # fmt: skip
    end_index = math.inf if duration_s is None else round(duration_s * rate)

    def performing() -> str:
        event = sim.script.event_at(sim.time_s, loop=sim.config.script.loop)
        return f", performing {event.movement} #{event.repetition}" if event else ", at rest"

    k = 0  # index of the next sample to push
    try:
        while k < end_index and not (stop is not None and stop.is_set()):
            if follower is not None and isinstance(sim.script, LiveScript):
                follower.drain(sim.script, t0, sim.library.movements, sim.time_s)
            emg, act = sim.generate(block)
            index = np.arange(k, k + block, dtype=np.int64)
            codes = chunk_fault_codes(sim, k, block // chunk, chunk).astype(np.float64)
            if output.counter:
                emg = np.concatenate([emg, counter_column(index)], axis=1)
            for start in range(0, block, chunk):
                if k >= end_index or (stop is not None and stop.is_set()):
                    break
                t_last = t0 + (k + chunk - 1) / rate
                wait = t_last - pylsl.local_clock()
                if wait > 0:
                    time.sleep(wait)
                stamp = t_last + timing.clock_offset_s
                if timing.jitter_s > 0:
                    if timing.jitter == "uniform":
                        stamp += jitter_rng.uniform(-timing.jitter_s, timing.jitter_s)
                    else:
                        stamp += jitter_rng.normal(0.0, timing.jitter_s)
                outlet.push(emg[start : start + chunk], stamp)
                if truth_outlet is not None:
                    row = np.concatenate(
                        [
                            [float(index[start])],
                            act[start].astype(np.float64),
                            codes[start // chunk],
                        ]
                    )
                    truth_outlet.push(row[None, :], t0 + k / rate)
                k += chunk
                status.update(chunk, pylsl.local_clock() - t_last, performing)
    finally:
        if follower is not None:
            follow_stop.set()
            follower.close()
        outlet.close()
        if truth_outlet is not None:
            truth_outlet.close()
        log.info("%s: stopped after %d samples", output.name, k)
    return k
