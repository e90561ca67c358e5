"""Fixtures for the streaming tests: LSL outlets living in child processes."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _serve(spec: dict[str, Any], ready: Any, stop: Any) -> None:
    import time

    import numpy as np

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

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


def _serve_amplifier(spec: dict[str, Any], ready: Any, stop: Any, t0_shared: Any) -> None:
    """A 4096 Hz amplifier on another clock: 130 Hz 100 uV sines (no mains harmonic), a counter
    channel, jittered stamps. ``unit`` is the declared unit of the EMG channels and ``scale`` the
    value of one microvolt in it (1e-6 for volts)."""
    import time

    import numpy as np
    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    rate, chunk, n_ch = 4096.0, 32, spec.get("channels", 22)
    labels = [f"F{i + 1}" for i in range(n_ch)] + ["counter"]
    info = stream_info(
        spec["name"],
        "EMG",
        n_ch + 1,
        rate,
        "float32",
        spec["name"],
        channel_labels=labels,
        channel_unit=[spec.get("unit", "microvolts")] * n_ch + ["none"],
    )
    outlet = ChunkOutlet(info)
    scale = spec.get("scale", 1.0)
    rng = np.random.default_rng(0)
    t0 = pylsl.local_clock() + 0.05
    t0_shared.value = t0
    ready.set()
    k = 0
    while not stop.is_set():
        t_last = t0 + (k + chunk - 1) / rate
        wait = t_last - pylsl.local_clock()
        if wait > 0:
            time.sleep(wait)
        idx = np.arange(k, k + chunk)
        data = np.empty((chunk, n_ch + 1), np.float32)
        sine_uv = spec.get("amplitude_uv", 100.0) * np.sin(2 * np.pi * 130.0 * idx / rate)
        data[:, :n_ch] = scale * sine_uv[:, None]
        data[:, n_ch] = idx
        stamp = t_last + spec.get("offset_s", 0.0) + rng.uniform(-1, 1) * spec.get("jitter_s", 0.0)
        outlet.push(data, stamp)
        k += chunk
    outlet.close()


def _serve_camera(spec: dict[str, Any], ready: Any, stop: Any) -> None:
    """A small camera: frames stamped with their capture time, pixel value = frame index."""
    import time

    import numpy as np
    import pylsl

    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    w, h, fps = 32, 24, spec.get("fps", 30.0)
    info = stream_info(
        spec["name"],
        "Video",
        w * h * 3,
        fps,
        "int8",
        spec["name"],
        desc={"width": w, "height": h, "pixel_format": "rgb24"},
    )
    outlet = ChunkOutlet(info, max_buffered_s=2)
    ready.set()
    t_next, i = pylsl.local_clock(), 0
    while not stop.is_set():
        wait = t_next - pylsl.local_clock()
        if wait > 0:
            time.sleep(wait)
        if i not in spec.get("skip", ()):
            frame = np.full((1, w * h * 3), i % 256, np.uint8).view(np.int8)
            outlet.push(frame, t_next)
        t_next += 1 / fps
        i += 1
    outlet.close()


def _serve_mne_player(spec: dict[str, Any], ready: Any, stop: Any) -> None:
    """MNE-LSL's ``PlayerLSL`` playing an MNE recording of 22 EMG channels: 130 Hz sines of
    100 uV, stored as MNE stores data (volts), declared as MNE-LSL declares it."""
    import mne
    import numpy as np
    from mne_lsl.player import PlayerLSL

    rate = 4096.0
    t = np.arange(int(10 * rate)) / rate  # 1300 whole periods: the loop joins seamlessly
    data = np.repeat(100e-6 * np.sin(2 * np.pi * 130.0 * t)[None], 22, axis=0)
    info = mne.create_info([f"F{i + 1}" for i in range(22)], rate, "emg")
    raw = mne.io.RawArray(data, info, verbose="error")
    player = PlayerLSL(raw, chunk_size=32, name=spec["name"], source_id=spec["name"])
    player.start()
    ready.set()
    stop.wait()
    player.stop()


@pytest.fixture
def spawn_node() -> Iterator[Callable[..., Any]]:
    """Start ``amplifier``, ``camera`` or ``mne_player`` outlets in child processes; returns
    (stop, t0)."""
    ctx = mp.get_context("spawn")
    running: list[tuple[Any, Any]] = []

    def start(kind: str, **spec: Any) -> tuple[Any, Any]:
        ready, stop = ctx.Event(), ctx.Event()
        t0 = ctx.Value("d", 0.0)
        target, args = {
            "amplifier": (_serve_amplifier, (spec, ready, stop, t0)),
            "camera": (_serve_camera, (spec, ready, stop)),
            "mne_player": (_serve_mne_player, (spec, ready, stop)),
        }[kind]
        process = ctx.Process(target=target, args=args, daemon=True)
        process.start()
        assert ready.wait(20), f"{kind} process did not start"
        running.append((process, stop))
        return stop, t0

    yield start
    for process, stop in running:
        stop.set()
        process.join(5)
        if process.is_alive():
            process.kill()
