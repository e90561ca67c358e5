"""Fixtures for the EMG node tests: the node and raw 'amplifier' outlets in child processes."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emg.simulator_node import node_main

CTX = mp.get_context("spawn")


def _raw_main(spec: dict[str, Any], ready: Any, stop: Any) -> None:
    """An amplifier-like outlet: channel j carries 100 * sin(0.01 * (j + 1) * k) at sample k,
    plus a `Counter` channel with k (so any sample can be recomputed by the test)."""
    import time

    import numpy as np
    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    labels = [*spec["labels"], "Counter"]
    rate, chunk = spec["rate_hz"], spec.get("chunk", 10)
    info = stream_info(
        spec["name"], spec.get("stype", "EEG"), len(labels), rate, "double64", spec["name"],
        channel_labels=labels, channel_unit=spec.get("unit"), desc={"manufacturer": "TestAmp"},
    )  # fmt: skip
    outlet = ChunkOutlet(info)
    ready.set()
    t0 = pylsl.local_clock()
    k = 0
    gains = np.arange(1, len(labels))
    while not stop.is_set():
        index = np.arange(k, k + chunk)
        data = 100.0 * np.sin(0.01 * index[:, None] * gains[None, :])
        outlet.push(np.concatenate([data, index[:, None]], axis=1), t0 + (k + chunk - 1) / rate)
        k += chunk
        time.sleep(max(0.0, t0 + k / rate - pylsl.local_clock()))
    outlet.close()


def _markers_main(spec: dict[str, Any], ready: Any, stop: Any, times: Any) -> None:
    """A protocol-like marker outlet: once a consumer connects, push ``spec["schedule"]``
    (``[(delay_s, marker)]`` after ``lead_s``) stamped with the planned times, report them."""
    import time

    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    info = stream_info(spec["name"], "Markers", 1, 0.0, "string", spec["name"])
    outlet = ChunkOutlet(info)
    ready.set()
    if not outlet.wait_for_consumers(30):
        return
    base = pylsl.local_clock() + spec.get("lead_s", 2.0)
    for delay_s, marker in spec["schedule"]:
        when = base + delay_s
        time.sleep(max(0.0, when - pylsl.local_clock()))
        outlet.push([[marker]], when)
        times.put((marker, when))
    while not stop.is_set():
        time.sleep(0.05)
    outlet.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Any]]:
    """``spawn("node", overrides)``, ``spawn("raw", spec)``, ``spawn("markers", spec, queue)``:
    start a child process, stopped after the test."""
    ctx = CTX
    running: list[tuple[Any, Any]] = []

    def start(kind: str, arg: Any, times: Any = None) -> Any:
        stop = ctx.Event()
        if kind == "node":
            process = ctx.Process(target=node_main, args=(arg, stop), daemon=True)
        elif kind == "markers":
            ready = ctx.Event()
            process = ctx.Process(target=_markers_main, args=(arg, ready, stop, times), daemon=True)
        else:
            ready = ctx.Event()
            process = ctx.Process(target=_raw_main, args=(arg, ready, stop), daemon=True)
        process.start()
        if kind != "node":
            assert ready.wait(30), f"{kind} outlet process did not start"
        running.append((process, stop))
        return process

    yield start
    for process, stop in reversed(running):
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
