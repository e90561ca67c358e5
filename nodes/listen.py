"""``eifer listen``: print what is published on the bus, one line per message (a terminal view)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import numpy as np

from nodes.common import (
    OptionArguments,
    add_option_config_arguments,
    count,
    load_option_config,
    seconds,
)
from streaming.addresses import DEFAULT_ADDRESS
from streaming.bus.curve import CurveClient
from streaming.bus.pubsub import TOPICS, Message, Subscriber
from streaming.bus.schema import UnknownTopicError, validate
from streaming.config import ConfigError
from streaming.errors import PayloadError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options = OptionArguments(parser)
    options.add_argument(
        "--address",
        nargs="+",
        default=[DEFAULT_ADDRESS],
        help="bus address(es) to subscribe to, e.g. the pipeline's and the protocol node's",
    )
    options.add_argument("--topics", nargs="*", default=list(TOPICS), help="topics to show")
    options.add_argument(
        "--secret-key", default="", help="CURVE: this subscriber's NAME.key_secret"
    )
    options.add_argument(
        "--server-key",
        nargs="+",
        default=[],
        help="CURVE: the publisher's public NAME.key, one for every --address or one per address",
    )
    options.add_argument("--seconds", type=seconds, help="stop after this many seconds")
    options.add_argument("--every", type=count, default=1, help="show every Nth per-frame message")
    add_option_config_arguments(options, example="every=30")


_MAX_BARS = 64  # a line stays a line, whatever the channel count
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _bar(values: np.ndarray, scale: float) -> str:
    """Tiny per-channel level bars, one character per channel."""
    levels = " ▁▂▃▄▅▆▇█"
    x = np.nan_to_num(np.asarray(values[:_MAX_BARS], dtype=float) / max(scale, 1e-9), nan=0.0)
    bars = "".join(levels[int(np.clip(v, 0, 1) * (len(levels) - 1))] for v in x)
    return bars + ("…" if len(values) > _MAX_BARS else "")


def _clean(text: Any, limit: int = 120) -> str:
    """Text from the bus, safe for a terminal: no control characters (escape sequences), short."""
    text = _CONTROL.sub("?", str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any, digits: int = 1) -> str:
    """A number for people: ``digits`` decimals, in powers of ten from a million on (a rate of
    1e308 is ``1e+308``, not 309 digits), ``-`` for nil/NaN."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def _frame(message: Message) -> str:
    return f"#{'-' if message.frame is None else message.frame:<6}"


def format_message(message: Message) -> str:
    """One readable line for a bus message whose fields follow the contract
    (:func:`streaming.bus.schema.validate`); optional fields may be absent, ``t``/``frame`` nil."""
    with np.errstate(all="ignore"):  # values near the float limits: a line, not a warning
        return _format(message)


def _format(message: Message) -> str:
    f = message.fields
    if message.topic == "muscle":
        values = f["emg_measured"]
        normalised = f.get("normalised", False)
        finite = values[np.isfinite(values)]
        peak = float(finite.max()) if finite.size else float("nan")
        scale = 1.0 if normalised else max(peak if finite.size else 0.0, 1.0)
        unit = "norm" if normalised else "uV"
        missing = " EMG MISSING" if f.get("emg_missing") else ""
        return (
            f"muscle  {_frame(message)} t={_num(message.t, 3)} |{_bar(values, scale)}| "
            f"max {_num(peak)} {unit}{missing}"
        )
    if message.topic == "expression":
        phi = f.get("phi_video")
        size = "-" if phi is None else f"{np.linalg.norm(np.nan_to_num(phi)):.3f}"
        return f"expr    {_frame(message)} |phi_video| {size}"
    if message.topic == "status":
        lat = f.get("latency_ms", {}).get("capture_to_publish", {})
        streams = ", ".join(
            f"{_clean(name, 40)} {'ok' if s.get('connected') else 'DOWN'} "
            f"{_num(s.get('rate_hz'), 0)} Hz"
            for name, s in f.get("streams", {}).items()
        )
        frames = f.get("frames", {})
        return (
            f"status  {streams}; frames {frames.get('published')} dropped {frames.get('dropped')} "
            f"missing {frames.get('emg_missing')}; latency p50 {_num(lat.get('p50'))} ms"
            f" p99 {_num(lat.get('p99'))} ms; backend {_clean(f.get('backend'), 40)}"
        )
    if message.topic == "instruction":
        return (
            f"instruct {_clean(f['text'])} ({_clean(f.get('phase'), 40)}, "
            f"{_num(f.get('remaining_s'), 0)} s left)"
        )
    if message.topic == "face":
        box = "no face" if f.get("face_box") is None else f"box {np.round(f['face_box'], 1)}"
        crop = "" if f.get("crop") is None else f", crop {f['crop_size'][0]} px"
        return (
            f"face    {_frame(message)} {f['image_size'][0]}x{f['image_size'][1]} JPEG "
            f"{len(f['image']) / 1e3:.1f} kB, {box}{crop}"
        )
    if message.topic == "quality":
        summary = quality_summary(f["channels"], f["states"], f["reasons"])
        return f"quality t={_num(message.t, 3)} {summary}"
    return f"{_clean(message.topic, 40)} {_clean(sorted(f))}"


def quality_summary(channels: list[str], states: list[str], reasons: list[list[str]]) -> str:
    """``21 good, 1 bad (F3: flat)``: counts per state, then the channels not good and why
    (worst first, at most 8 named)."""
    counts = {s: states.count(s) for s in ("good", "check", "bad") if states.count(s)}
    text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no channels"
    named = [
        f"{_clean(c, 12)}: {_clean('/'.join(r) or s, 40)}"
        for level in ("bad", "check")
        for c, s, r in zip(channels, states, reasons, strict=True)
        if s == level
    ]
    if named:
        text += " (" + "; ".join(named[:8]) + ("; …" if len(named) > 8 else "") + ")"
    return text


def _bump(counts: dict[str, int], key: str, max_keys: int = 50) -> None:
    """Count ``key``; beyond ``max_keys`` distinct keys (a flood of random topics) as "other"."""
    if key not in counts and len(counts) >= max_keys:
        key = "other"
    counts[key] = counts.get(key, 0) + 1


class TerminalView:
    """Lines for the terminal (``eifer listen``, the demo). A message that breaks its topic's
    contract is shown as the reason only and counted (:attr:`invalid`); one on a topic outside
    the contract as its field names (:attr:`unknown`); both are summarised at the end."""

    def __init__(self) -> None:
        self.invalid: dict[str, int] = {}
        self.unknown: dict[str, int] = {}
        self.last_problem: str | None = None

    def line(self, message: Message) -> str:
        """The line for ``message``; never raises."""
        try:
            return format_message(validate(message))
        except UnknownTopicError:
            _bump(self.unknown, message.topic)
            return f"{_clean(message.topic, 40)} (not a contract topic) {_clean(sorted(message.fields))}"
        except PayloadError as exc:
            _bump(self.invalid, message.topic)
            self.last_problem = str(exc)
            return f"{message.topic:<7} {_frame(message)} not shown: {_clean(exc, 200)}"

    def summary(self, rejected: int = 0, disconnects: int = 0) -> list[str]:
        """Closing lines: messages rejected or not shown, and why (the last reason)."""
        lines = []
        if rejected:
            lines.append(f"rejected {rejected} malformed messages")
        if disconnects:
            lines.append(
                f"bus connection dropped {disconnects} times (a message over 16 MiB, or the "
                "publisher stopped): messages queued on it were lost"
            )
        if self.invalid:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.invalid.items()))
            lines.append(
                f"not shown (fields against the contract): {counts} "
                f"(last: {_clean(self.last_problem, 200)})"
            )
        if self.unknown:
            counts = ", ".join(f"{_clean(k, 40)}: {v}" for k, v in sorted(self.unknown.items()))
            lines.append(f"topics outside the contract: {counts}")
        return lines


def _curve(args: argparse.Namespace) -> dict[str, CurveClient]:
    """CURVE keys per address from ``--secret-key`` and ``--server-key`` (neither: plain)."""
    servers = list(args.server_key)
    if bool(servers) != bool(args.secret_key):
        given, missing = (
            ("--server-key", "--secret-key") if servers else ("--secret-key", "--server-key")
        )
        raise ConfigError(f"{given} needs {missing} too (CURVE takes both)")
    if not servers:
        return {}
    if len(servers) == 1:
        servers *= len(args.address)
    if len(servers) != len(args.address):
        raise ConfigError(
            f"--server-key: give one key file for every --address or one per address "
            f"({len(args.address)}), got {len(servers)}"
        )
    return {
        address: CurveClient.from_files(args.secret_key, server)
        for address, server in zip(args.address, servers, strict=True)
    }


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    counts: dict[str, int] = {}
    view = TerminalView()
    with Subscriber(args.address, args.topics, curve=_curve(args)) as subscriber:
        try:
            while deadline is None or time.monotonic() < deadline:
                message = subscriber.receive(0.5)
                if message is None:
                    continue
                _bump(counts, message.topic)
                line = view.line(message)  # every message is checked (and counted) ...
                per_frame = message.topic in {"muscle", "expression"}
                if not per_frame or counts.get(message.topic, 0) % max(args.every, 1) == 0:
                    print(line, flush=True)  # ... every Nth per-frame one is shown
        except KeyboardInterrupt:  # Ctrl-C is the normal end: still print the summary
            pass
        for line in view.summary(subscriber.rejected, subscriber.disconnects):
            print(line, file=sys.stderr)
    print("received " + ", ".join(f"{_clean(k, 40)}: {v}" for k, v in sorted(counts.items())))
    return 0
