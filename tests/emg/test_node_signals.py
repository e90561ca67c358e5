"""``eifer node emg --source lsl`` stops on SIGTERM, SIGINT and SIGHUP at every stage.

A real node process and a real amplifier-like outlet: while the node waits for the amplifier's
stream, while it bridges, and after the amplifier vanished. Each time the node must exit with
status 0 (as the other nodes do after a stop signal) within a few seconds, where a blocking wait
would hold it for ``bridge.timeout_s`` (60 s here), and leave no stream behind.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO

import pylsl
import pytest

from streaming.acquisition.lsl_io import StreamSelector, find_stream

WAIT_S = 60.0  # bridge.timeout_s: what a node deaf to signals would take to give up
STOP_S = 5.0  # the node must be gone this soon after the signal (~1 s unloaded, 5x margin)
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
# the signals share one handler once connected: SIGTERM in the quick tier, the others slow
BRIDGING_SIGNALS = [
    signal.SIGTERM,
    *(pytest.param(s, marks=pytest.mark.slow) for s in (signal.SIGINT, signal.SIGHUP)),
]


class Lines:
    """The node's stderr, read by a thread, so the test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.seen):
            left_s = deadline - time.monotonic()
            assert left_s > 0, f"no {text!r} from the node in {timeout_s} s: {self.seen}"
            try:
                self.seen.append(self._queue.get(timeout=left_s))
            except queue.Empty:
                continue

    def rest(self, timeout_s: float = 2.0) -> str:
        """Everything the node wrote (call after it exited; the reader drains the pipe)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.seen.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                break
        return "".join(self.seen)


def _start_node(raw: str, out: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "node", "emg", "--source", "lsl", "--name", out,
         "--set", f'bridge.name="{raw}"', "--set", f"bridge.timeout_s={WAIT_S}",
         "--set", f'stream.source_id="{out}"'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process, Lines(process.stderr)  # type: ignore[arg-type]


def _stop_and_time(process: subprocess.Popen[str], signum: int) -> float:
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        process.wait(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - sent


def _assert_stopped_cleanly(process: subprocess.Popen[str], lines: Lines, took_s: float) -> None:
    err = lines.rest()
    assert took_s < STOP_S, f"the node took {took_s:.1f} s to stop: {err}"
    assert process.returncode == 0, err
    assert "Traceback" not in err and "eifer node emg: error" not in err, err


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stops_while_waiting_for_the_amplifier(signum: int, unique_name: str) -> None:
    process, lines = _start_node(f"{unique_name}-raw", unique_name)
    try:
        lines.wait_for("waiting up to", timeout_s=60)
        time.sleep(0.5)  # inside the wait, not at its first look
    finally:
        took_s = _stop_and_time(process, signum)
    _assert_stopped_cleanly(process, lines, took_s)
    assert "stopped while waiting" in lines.rest()


@pytest.mark.parametrize("vanished", [False, True], ids=["connected", "vanished"])
@pytest.mark.parametrize("signum", BRIDGING_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stops_while_bridging_and_after_the_amplifier_vanished(
    signum: int, vanished: bool, spawn, unique_name: str
) -> None:
    raw = f"{unique_name}-raw"
    amplifier = spawn("raw", {"name": raw, "labels": ["E1", "E2"], "rate_hz": 500.0})
    process, lines = _start_node(raw, unique_name)
    try:
        find_stream(StreamSelector(name=unique_name), timeout_s=60)
        lines.wait_for("bridging", timeout_s=30)
        if vanished:
            amplifier.kill()  # the amplifier's app dies: its stream goes without a goodbye
            lines.wait_for("no samples for", timeout_s=30)
    finally:
        took_s = _stop_and_time(process, signum)
    _assert_stopped_cleanly(process, lines, took_s)
    assert "bridge stopped after" in lines.rest()
    # nothing left: the node's outlet is gone with it
    assert not pylsl.resolve_bypred(f"name='{unique_name}'", 1, 1.0)


def test_no_amplifier_within_the_timeout_is_one_clear_error(unique_name: str) -> None:
    from nodes.emg import load_node_config, run_node
    from streaming.errors import StreamNotFoundError

    cfg = load_node_config(None, ['source="lsl"', f'bridge.name="{unique_name}"',
                                  "bridge.timeout_s=1.0"])  # fmt: skip
    started = time.monotonic()
    with pytest.raises(StreamNotFoundError, match=rf"{unique_name}.*within 1 s.*bridge\.timeout_s"):
        run_node(cfg)
    assert time.monotonic() - started < 10.0  # the timeout, one last look, no minute-long hang
