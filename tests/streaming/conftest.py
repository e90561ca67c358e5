"""Fixtures for the streaming tests: LSL outlets living in child processes."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _serve(spec: dict[str, Any], ready: Any, stop: Any) -> None:
    import time

    import numpy as np

    from streaming.lsl_io import ChunkOutlet, stream_info

    info = stream_info(
        spec["name"],
        spec.get("stype", "EMG"),
        spec["channels"],
        spec.get("rate_hz", 100.0),
        spec.get("fmt", "float32"),
        spec.get("source_id", spec["name"]),
        channel_labels=spec.get("labels"),
        channel_unit=spec.get("unit"),
        desc=spec.get("desc"),
    )
    outlet = ChunkOutlet(info)
    ready.set()
    index = 0
    chunk = spec.get("chunk", 10)
    period_s = chunk / (spec.get("rate_hz") or 20.0)
    while not stop.is_set():
        if spec.get("fmt") == "string":
            outlet.push([[f"m{index}"]])
            index += 1
        else:
            rows = np.arange(index, index + chunk, dtype=np.float64)[:, None]
            outlet.push(np.repeat(rows, spec["channels"], axis=1))
            index += chunk
        time.sleep(period_s)
    outlet.close()


@pytest.fixture
def spawn_outlet() -> Iterator[Callable[..., Any]]:
    """Start an outlet streaming a counter in every channel; stopped after the test."""
    ctx = mp.get_context("spawn")
    running: list[tuple[Any, Any]] = []

    def start(**spec: Any) -> Any:
        ready, stop = ctx.Event(), ctx.Event()
        process = ctx.Process(target=_serve, args=(spec, ready, stop), daemon=True)
        process.start()
        assert ready.wait(20), "outlet process did not start"
        running.append((process, stop))
        return stop

    yield start
    for process, stop in running:
        stop.set()
        process.join(5)
        if process.is_alive():
            process.kill()
