"""A real amplifier's LSL stream republished as the ``EMG`` contract stream.

Picks the amplifier's stream by name/type/source id, derives the contract channels from a channel
map (bipolar ``F1 = ["E3", "E4"]`` = E3 - E4, or a pass-through ``F1 = "E3"``;
:mod:`streaming.acquisition.channel_map`), checks channel count, rate and labels, converts to
microvolts and republishes with the same stamps, plus the ``counter`` channel
(:mod:`streaming.acquisition.emg_outlet`): the amplifier's own counter when it has one, else the
bridge's sample count.

A simulated amplifier (the EMG simulator standing for the amplifier's LSL app) stays checkable
through the bridge: when the counter is the source's own (``counter_label``), the sample indices
are the simulator's, so the source's ``desc/simulation`` (which names its truth stream, for
``eifer check``) is carried over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from streaming.acquisition.channel_map import ChannelMap, order_by_scheme, unit_scale
from streaming.acquisition.clock import COUNTER_MODULUS
from streaming.acquisition.emg_outlet import (
    OutputConfig,
    StatusLine,
    StopEvent,
    contract_channels,
    counter_desc,
)
from streaming.config import Config
from streaming.errors import StreamFormatError, StreamNotFoundError

if TYPE_CHECKING:
    from streaming.acquisition.lsl_io import StreamSelector

__all__ = ["BridgeConfig", "run_bridge"]

log = logging.getLogger("eifer.node.emg")

SILENCE_WARNING_S = 2.0  # a source quiet this long is reported (and again every as long)
LOOK_S = 0.25  # one look for the amplifier's stream: a stop while waiting ends it this fast


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


def wait_for_stream(selector: StreamSelector, timeout_s: float, stop: StopEvent | None) -> bool:
    """Wait until a stream matching ``selector`` is visible: True, or False once ``stop`` is set.

    Looks in slices of ``LOOK_S`` so that a signal (which only sets ``stop``) ends the wait
    promptly, where one blocking resolve would hold the node for all of ``timeout_s``. Raises
    :class:`StreamNotFoundError` naming the visible streams after ``timeout_s``.
    """
    import pylsl

    predicate = selector.predicate()
    deadline = pylsl.local_clock() + timeout_s
    log.info("waiting up to %g s for the amplifier's stream (%s)", timeout_s, selector)
    while not (stop is not None and stop.is_set()):
        left_s = deadline - pylsl.local_clock()
        if left_s <= 0:
            visible = ", ".join(repr(i.name()) for i in pylsl.resolve_streams(0.5)) or "none"
            raise StreamNotFoundError(
                f"no LSL stream with {selector} appeared within {timeout_s:g} s "
                f"(bridge.timeout_s); visible: {visible}. Is the amplifier's LSL app streaming?"
            )
        look_s = min(LOOK_S, left_s)
        if predicate:
            seen = pylsl.resolve_bypred(predicate, 1, look_s)
        else:
            seen = pylsl.resolve_streams(look_s)
        if seen:
            return True
    return False


def run_bridge(
    bridge: BridgeConfig,
    output: OutputConfig,
    source_id: str,
    *,
    status_interval_s: float = 5.0,
    stop: StopEvent | None = None,
    duration_s: float | None = None,
) -> int:
    """Republish the amplifier's stream as the ``EMG`` contract stream.

    Parameters
    ----------
    bridge : BridgeConfig
        Which amplifier stream to read and how its channels become contract channels.
    output : OutputConfig
        The published ``EMG`` stream.
    source_id : str
        LSL source id of the outlet.
    status_interval_s : float
        Seconds between status lines (samples, measured rate, lag behind real time).
    stop : StopEvent | None
        Ends the bridge when set.
    duration_s : float | None
        Ends the bridge after this many seconds; None: until ``stop``.

    Returns
    -------
    int
        The number of samples republished.
    """
    import pylsl

    from streaming.acquisition.lsl_io import (
        ChunkInlet,
        ChunkOutlet,
        StreamSelector,
        channel_labels,
        desc_to_dict,
        find_stream,
        stream_info,
    )

    b, out = bridge, output
    selector = StreamSelector(b.name, b.type, b.source_id)
    if not wait_for_stream(selector, b.timeout_s, stop):
        log.info("%s: stopped while waiting for the amplifier's stream", out.name)
        return 0
    source = find_stream(selector, timeout_s=1.0)  # there now: full desc, one match
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

    labels, units, types = contract_channels(out, cmap.labels)
    # a simulated source's truth counts the source's samples: valid with the source's counter
    simulated = source_desc.get("simulation")
    carried = isinstance(simulated, dict) and counter_col is not None
    desc = {
        "manufacturer": str(source_desc.get("manufacturer", "")),
        **counter_desc(out),
        **({"simulation": simulated} if carried else {}),
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
        out.name, out.type, len(labels), rate, "float32", source_id,
        channel_labels=labels, channel_unit=units, channel_type=types, desc=desc,
    )  # fmt: skip
    inlet = ChunkInlet(source, max_buflen_s=b.max_buflen_s, clock_sync=b.clock_sync)
    outlet = ChunkOutlet(info, chunk_size=out.chunk_samples, max_buffered_s=out.max_buffered_s)
    status = StatusLine(out.name, status_interval_s, pylsl.local_clock)
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
                if now - last_data > SILENCE_WARNING_S:
                    log.warning("%s: no samples for %.1f s", described, now - last_data)
                    last_data = now
                continue
            last_data = now
            derived = cmap.apply(data)
            if out.counter:
                if counter_col is not None:
                    counter: np.ndarray = (
                        np.asarray(data[:, counter_col], dtype=np.float64) % COUNTER_MODULUS
                    )
                else:
                    counter = np.arange(received, received + len(stamps)) % COUNTER_MODULUS
                derived = np.concatenate([derived, counter[:, None]], axis=1)
            outlet.push_stamped(derived.astype(np.float32), stamps)
            received += len(stamps)
            status.update(len(stamps), now - float(stamps[-1]))
    finally:
        inlet.close()  # inlets before outlets
        outlet.close()
        log.info("%s: bridge stopped after %d samples", out.name, received)
    return received
