"""``eifer node emg``: stream facial EMG as the ``EMG`` LSL contract stream (DESIGN.md).

Two sources:

- ``simulator``: :class:`~streaming.simulation.EmgSimulator` paced in real time against
  ``pylsl.local_clock()`` (sample k is due at ``t0 + k / rate``, so no drift accumulates), in
  chunks (default 32 samples = 7.8 ms at 4096 Hz). Optional clock offset and chunk-stamp jitter
  emulate an amplifier on another clock behind USB. The ground truth goes out as ``EMG-truth``:
  one row per chunk, ``sample_index`` of the chunk's first sample then each muscle's activation,
  stamped with the exact true LSL time of that first sample (no offset, no jitter). With
  ``simulator.script.kind = "markers"`` the simulated participant performs what the protocol
  node (``eifer node protocol``) instructs, live, from its ``start:``/``stop:`` markers.
- ``lsl``: a bridge for a real amplifier: picks its LSL stream by name/type/source id, derives the
  contract channels from a channel map (bipolar ``F1 = ["E3", "E4"]`` = E3 - E4, or a pass-through
  ``F1 = "E3"``), checks channel count, rate and labels, and republishes with the same stamps.

Both append a ``counter`` channel after the electrode channels (as TMSi/g.tec amplifiers offer):
the sample index modulo 2**24, exact in float32 (wraps every 68 min at 4096 Hz), so consumers can
detect gaps. ``stream.counter = false`` turns it off.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field

from nodes.common import add_config_arguments, stop_on_signals
from streaming.channel_map import ChannelMap, order_by_scheme, unit_scale
from streaming.config import Config, load_config
from streaming.errors import StreamFormatError
from streaming.simulation import EmgSimulator, LiveScript, SimulatorConfig
from streaming.simulation.marker_follower import MarkerFollower

__all__ = [
    "COUNTER_LABEL",
    "COUNTER_MODULO",
    "BridgeConfig",
    "EmgNodeConfig",
    "OutputConfig",
    "TimingConfig",
    "add_arguments",
    "load_node_config",
    "run",
    "run_bridge",
    "run_node",
    "run_simulator",
]

log = logging.getLogger("eifer.node.emg")

COUNTER_LABEL = "counter"
COUNTER_MODULO = 1 << 24  # largest power of two whose integers float32 holds exactly
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "nodes" / "emg.toml"


class OutputConfig(Config):
    name: str = "EMG"
    type: str = "EMG"
    source_id: str = ""  # "" -> eifer-emg-<source>-<host>
    chunk_samples: int = Field(32, ge=1, le=4096)
    counter: bool = True
    truth: bool = True  # simulator only: publish the EMG-truth stream
    truth_name: str = "EMG-truth"
    truth_type: str = "EMGTruth"
    max_buffered_s: float = Field(60.0, gt=0)


class TimingConfig(Config):
    """Clock emulation (simulator) and status reporting."""

    start_delay_s: float = Field(0.5, ge=0)  # t0 = now + this, so consumers can connect first
    clock_offset_s: float = 0.0  # stamps = true time + offset (an amplifier on another clock)
    jitter_s: float = Field(0.0, ge=0)  # chunk-stamp jitter: uniform +/- or gaussian sd
    jitter: Literal["uniform", "gaussian"] = "uniform"
    status_interval_s: float = Field(5.0, gt=0)


class BridgeConfig(Config):
    """Which amplifier stream to bridge and how its channels become the contract channels."""

    name: str | None = None
    type: str | None = "EEG"
    source_id: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    expect_rate_hz: float | None = Field(None, gt=0)
    expect_channels: int | None = Field(None, ge=1)
    # output label -> input label (pass-through) or [plus, minus] (bipolar: plus - minus);
    # empty: every input channel passes through under its own label
    channels: dict[str, str | tuple[str, str]] = {}
    counter_label: str | None = None  # the amplifier's own counter channel, if it has one
    # to microvolts: a factor (1e6 for volts), or "auto" from the source's channel unit
    scale: float | Literal["auto"] = "auto"
    scheme: str | None = None  # e.g. "fridlund": output labels must be that scheme's channels
    clock_sync: bool = True  # stamps in this machine's clock (identical when on one machine)
    max_buflen_s: float = Field(10.0, gt=0)


class EmgNodeConfig(Config):
    source: Literal["simulator", "lsl"] = "simulator"
    resolve_scope: Literal["machine", "link", "site", "organization", "global"] = "machine"
    stream: OutputConfig = OutputConfig()
    timing: TimingConfig = TimingConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    bridge: BridgeConfig = BridgeConfig()


def load_node_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> EmgNodeConfig:
    """The node config from ``path`` (default: the shipped ``configs/nodes/emg.toml``)."""
    return load_config(EmgNodeConfig, path if path is not None else DEFAULT_CONFIG, overrides)


class _Event(Protocol):
    def is_set(self) -> bool: ...


def _source_id(cfg: EmgNodeConfig) -> str:
    return cfg.stream.source_id or f"eifer-emg-{cfg.source}-{socket.gethostname()}"


def _with_counter(cfg: OutputConfig, labels: list[str]) -> tuple[list[str], list[str], list[str]]:
    units = ["microvolts"] * len(labels)
    types = ["EMG"] * len(labels)
    if cfg.counter:
        return [*labels, COUNTER_LABEL], [*units, "samples"], [*types, "Counter"]
    return list(labels), units, types


def _counter_desc(cfg: OutputConfig) -> dict[str, Any]:
    """``desc/counter`` (label, modulo) when the counter channel is on, else nothing."""
    return {"counter": {"label": COUNTER_LABEL, "modulo": COUNTER_MODULO}} if cfg.counter else {}


class _Status:
    """A progress line every few seconds: samples, measured rate, lag behind real time."""

    def __init__(self, name: str, interval_s: float, clock: Any) -> None:
        self.name, self.interval_s, self._clock = name, interval_s, clock
        self.samples = 0
        self._start = self._last = clock()
        self._last_samples = 0

    def update(
        self, n: int, lag_s: float | None = None, extra: Callable[[], str] | None = None
    ) -> None:
        self.samples += n
        now = self._clock()
        if now - self._last < self.interval_s:
            return
        extra_text = extra() if extra is not None else ""
        rate = (self.samples - self._last_samples) / (now - self._last)
        lag = f", lag {lag_s * 1e3:.1f} ms" if lag_s is not None else ""
        log.info("%s: %d samples, %.1f Hz%s%s", self.name, self.samples, rate, lag, extra_text)
        self._last, self._last_samples = now, self.samples


def run_simulator(
    cfg: EmgNodeConfig,
    stop: _Event | None = None,
    duration_s: float | None = None,
) -> int:
    """Stream the simulator in real time until ``stop`` is set or ``duration_s`` has passed."""
    import pylsl

    from streaming.lsl_io import ChunkOutlet, configure_lsl, stream_info

    configure_lsl(cfg.resolve_scope)
    sim = EmgSimulator(cfg.simulator)
    follower: MarkerFollower | None = None
    follow_stop = threading.Event()
    if isinstance(sim.script, LiveScript):
        script_cfg = cfg.simulator.script
        follower = MarkerFollower(
            script_cfg.markers_stream, script_cfg.markers_source_id, follow_stop
        )
    out, timing = cfg.stream, cfg.timing
    rate = sim.rate_hz
    chunk = out.chunk_samples
    labels, units, types = _with_counter(out, sim.labels)
    t0 = pylsl.local_clock() + timing.start_delay_s  # true LSL time of sample 0
    source_id = _source_id(cfg)
    desc = {
        "manufacturer": "EIFER live",
        "model": "EmgSimulator",
        "scheme": sim.scheme.name,
        "montage": sim.scheme.montage,
        **_counter_desc(out),
        "simulation": {
            "t0_lsl": repr(t0),
            "clock_offset_s": repr(timing.clock_offset_s),
            "jitter_s": repr(timing.jitter_s),
            "jitter": timing.jitter,
            "seed": sim.config.seed,
            "script": sim.config.script.kind,
            "truth_stream": out.truth_name if out.truth else "",
        },
    }
    info = stream_info(
        out.name, out.type, len(labels), rate, "float32", source_id,
        channel_labels=labels, channel_unit=units, channel_type=types, desc=desc,
    )  # fmt: skip
    truth_outlet = None
    if out.truth:
        truth_labels = ["sample_index", *sim.muscle_labels]
        truth_info = stream_info(
            out.truth_name, out.truth_type, len(truth_labels), rate / chunk, "double64",
            f"{source_id}-truth", channel_labels=truth_labels,
            desc={"of_stream": out.name, "chunk_samples": chunk, "t0_lsl": repr(t0),
                  "stamp": "true LSL time of the chunk's first sample (no offset, no jitter)"},
        )  # fmt: skip
        truth_outlet = ChunkOutlet(truth_info, max_buffered_s=out.max_buffered_s)
    outlet = ChunkOutlet(info, chunk_size=chunk, max_buffered_s=out.max_buffered_s)
    jitter_rng = np.random.default_rng([sim.config.seed, 1])
    block = chunk * max(1, round(0.125 * rate / chunk))  # generate ~125 ms at a time
    status = _Status(out.name, timing.status_interval_s, pylsl.local_clock)
    log.info(
        "simulating %d-channel %s EMG at %g Hz as %r (source_id %r), chunks of %d, t0 %.6f",
        sim.n_channels, sim.scheme.name, rate, out.name, source_id, chunk, t0,
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
            if out.counter:
                counter = (index % COUNTER_MODULO).astype(np.float32)[:, None]
                emg = np.concatenate([emg, counter], axis=1)
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
                    row = np.concatenate([[float(index[start])], act[start].astype(np.float64)])
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
        log.info("%s: stopped after %d samples", out.name, k)
    return 0


def run_bridge(
    cfg: EmgNodeConfig,
    stop: _Event | None = None,
    duration_s: float | None = None,
) -> int:
    """Republish a real amplifier's LSL stream as the ``EMG`` contract stream."""
    import pylsl

    from streaming.lsl_io import (
        ChunkInlet,
        ChunkOutlet,
        StreamSelector,
        channel_labels,
        configure_lsl,
        desc_to_dict,
        find_stream,
        stream_info,
    )

    configure_lsl(cfg.resolve_scope)
    b, out = cfg.bridge, cfg.stream
    selector = StreamSelector(b.name, b.type, b.source_id)
    source = find_stream(selector, timeout_s=b.timeout_s)
    described = f"stream {source.name()!r} ({selector})"
    rate = float(source.nominal_srate())
    n_in = source.channel_count()
    if rate <= 0:
        raise StreamFormatError(f"{described} has an irregular rate; EMG needs a fixed rate")
    if b.expect_rate_hz is not None and abs(rate - b.expect_rate_hz) > 1e-6 * b.expect_rate_hz:
        raise StreamFormatError(
            f"{described} runs at {rate:g} Hz, the config expects {b.expect_rate_hz:g} Hz "
            "(bridge.expect_rate_hz); set the amplifier's rate or the config"
        )
    if b.expect_channels is not None and n_in != b.expect_channels:
        raise StreamFormatError(
            f"{described} has {n_in} channels, the config expects {b.expect_channels} "
            "(bridge.expect_channels)"
        )
    if source.channel_format() == pylsl.cf_string:
        raise StreamFormatError(f"{described} carries strings, not samples")
    in_labels = channel_labels(source)
    exclude = (b.counter_label,) if b.counter_label else ()
    source_desc = desc_to_dict(source)
    base = ChannelMap(b.channels, in_labels, exclude=exclude, stream=described)
    if b.scale == "auto":  # from the units of the input channels the map uses
        channels = source_desc.get("channels", {})
        entries = channels.get("channel", []) if isinstance(channels, dict) else []
        entries = entries if isinstance(entries, list) else [entries]
        unit_of = {x: e.get("unit", "") for x, e in zip(in_labels, entries, strict=False)
                   if isinstance(e, dict)}  # fmt: skip
        scale = unit_scale([unit_of.get(x, "") for x in base.inputs], described)
    else:
        scale = float(b.scale)
    mapping: Mapping[str, str | tuple[str, str]] = dict(b.channels) or {x: x for x in base.labels}
    if b.scheme is not None:
        order = order_by_scheme(base.labels, b.scheme, described)
        mapping = {x: mapping[x] for x in order}
    cmap = ChannelMap(mapping, in_labels, scale=scale, exclude=exclude, stream=described)
    counter_col = None
    if b.counter_label is not None:
        if b.counter_label not in in_labels:
            raise StreamFormatError(
                f"{described} has no counter channel {b.counter_label!r} "
                f"(bridge.counter_label); its labels are {in_labels}"
            )
        counter_col = in_labels.index(b.counter_label)

    labels, units, types = _with_counter(out, cmap.labels)
    desc = {
        "manufacturer": str(source_desc.get("manufacturer", "")),
        **_counter_desc(out),
        "bridge": {
            "source_name": source.name(),
            "source_type": source.type(),
            "source_id": source.source_id(),
            "scale": repr(scale),
            "clock_sync": b.clock_sync,
            "counter_from": b.counter_label or "bridge sample count",
            "derivation": cmap.derivations,
        },
    }
    info = stream_info(
        out.name, out.type, len(labels), rate, "float32", _source_id(cfg),
        channel_labels=labels, channel_unit=units, channel_type=types, desc=desc,
    )  # fmt: skip
    inlet = ChunkInlet(source, max_buflen_s=b.max_buflen_s, clock_sync=b.clock_sync)
    outlet = ChunkOutlet(info, chunk_size=out.chunk_samples, max_buffered_s=out.max_buffered_s)
    status = _Status(out.name, cfg.timing.status_interval_s, pylsl.local_clock)
    log.info("bridging %s -> %r: %s", described, out.name, ", ".join(cmap.labels))
    started = pylsl.local_clock()
    received = 0
    last_data = started
    try:
        inlet.open(b.timeout_s)
        while not (stop is not None and stop.is_set()):
            if duration_s is not None and pylsl.local_clock() - started >= duration_s:
                break
            data, stamps = inlet.pull(timeout_s=0.1)
            now = pylsl.local_clock()
            if len(stamps) == 0:
                if now - last_data > 2.0:
                    log.warning("%s: no samples for %.1f s", described, now - last_data)
                    last_data = now
                continue
            last_data = now
            derived = cmap.apply(data)
            if out.counter:
                if counter_col is not None:
                    counter = np.asarray(data[:, counter_col], dtype=np.float64) % COUNTER_MODULO
                else:
                    counter = np.arange(received, received + len(stamps)) % COUNTER_MODULO
                derived = np.concatenate([derived, counter[:, None]], axis=1)
            outlet.push_stamped(derived.astype(np.float32), stamps)
            received += len(stamps)
            status.update(len(stamps), now - float(stamps[-1]))
    finally:
        inlet.close()  # inlets before outlets
        outlet.close()
        log.info("%s: bridge stopped after %d samples", out.name, received)
    return 0


def run_node(
    cfg: EmgNodeConfig, stop: _Event | None = None, duration_s: float | None = None
) -> int:
    """Run the configured source (entry point for tests and other nodes)."""
    runner = run_simulator if cfg.source == "simulator" else run_bridge
    return runner(cfg, stop, duration_s)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)  # --config (default configs/nodes/emg.toml), --set key=value
    parser.add_argument("--source", choices=["simulator", "lsl"], help="override `source`")
    parser.add_argument("--scheme", help="simulator electrode scheme (fridlund, kuramoto, path)")
    parser.add_argument("--name", help="output stream name (default EMG)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many s")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.source:
        overrides.append(f'source="{args.source}"')
    if args.scheme:
        overrides.append(f'simulator.scheme="{args.scheme}"')
    if args.name:
        overrides.append(f'stream.name="{args.name}"')
    cfg = load_node_config(args.config, overrides)
    stop = threading.Event()
    stop_on_signals(stop.set)  # SIGINT/SIGTERM: leave the loop, close the outlets
    return run_node(cfg, stop, args.duration)
