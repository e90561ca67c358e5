"""``eifer listen``: print what is published on the bus, one line per message (a terminal view)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from nodes.common import add_option_config_arguments, load_option_config
from streaming.bus import DEFAULT_ADDRESS, TOPICS, Message, Subscriber


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=DEFAULT_ADDRESS, help="bus address to subscribe to")
    parser.add_argument("--topics", nargs="*", default=list(TOPICS), help="topics to show")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--every", type=int, default=1, help="show every Nth per-frame message")
    add_option_config_arguments(parser, example="every=30")


def _bar(values: np.ndarray, scale: float, width: int = 8) -> str:
    """Tiny per-channel level bars, one character per channel."""
    levels = " ▁▂▃▄▅▆▇█"
    x = np.nan_to_num(np.asarray(values, dtype=float) / max(scale, 1e-9), nan=0.0)
    return "".join(levels[int(np.clip(v, 0, 1) * (len(levels) - 1))] for v in x)


def format_message(message: Message) -> str:
    """One readable line for a bus message."""
    f = message.fields
    if message.topic == "muscle":
        values = np.asarray(f["emg_measured"], dtype=float)
        scale = 1.0 if f.get("normalised") else max(float(np.nanmax(values, initial=0)), 1.0)
        unit = "norm" if f.get("normalised") else "uV"
        missing = " EMG MISSING" if f.get("emg_missing") else ""
        peak = np.nanmax(values, initial=float("nan"))
        return f"muscle  #{message.frame:<6} t={message.t:.3f} |{_bar(values, scale)}| max {peak:.1f} {unit}{missing}"
    if message.topic == "expression":
        phi = np.asarray(f.get("phi_video", []), dtype=float)
        return f"expr    #{message.frame:<6} |phi_video| {np.linalg.norm(np.nan_to_num(phi)):.3f}"
    if message.topic == "status":
        lat = f.get("latency_ms", {}).get("capture_to_publish", {})
        streams = ", ".join(
            f"{name} {'ok' if s.get('connected') else 'DOWN'} {s.get('rate_hz', 0):.0f} Hz"
            for name, s in f.get("streams", {}).items()
        )
        frames = f.get("frames", {})
        return (
            f"status  {streams}; frames {frames.get('published')} dropped {frames.get('dropped')} "
            f"missing {frames.get('emg_missing')}; latency p50 {lat.get('p50', float('nan')):.1f} ms"
            f" p99 {lat.get('p99', float('nan')):.1f} ms; backend {f.get('backend')}"
        )
    if message.topic == "instruction":
        return f"instruct {f.get('text')} ({f.get('phase')}, {f.get('remaining_s', 0):.0f} s left)"
    return f"{message.topic} {sorted(f)}"


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    counts: dict[str, int] = {}
    with Subscriber(args.address, args.topics) as subscriber:
        while deadline is None or time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is None:
                continue
            counts[message.topic] = counts.get(message.topic, 0) + 1
            per_frame = message.topic in {"muscle", "expression"}
            if not per_frame or counts[message.topic] % max(args.every, 1) == 0:
                print(format_message(message), flush=True)
        if subscriber.rejected:
            print(f"rejected {subscriber.rejected} malformed messages", file=sys.stderr)
    print("received " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0
