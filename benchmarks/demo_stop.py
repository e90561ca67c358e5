"""How fast the demo fails on a taken port, and how fast its nodes end however it is stopped.

Reported: seconds from start to the one-line error when ``--bus`` is taken (before any model or
node starts); for SIGTERM (``timeout``, ``kill``), SIGHUP (terminal closed) and SIGKILL of the
demo, seconds from the signal until every node process has ended and every port is free (SIGKILL:
the kernel's PR_SET_PDEATHSIG and the nodes' parent watchdog, since the demo cannot act).

    python -m benchmarks.demo_stop [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "nodes.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def taken_port_fail_s() -> float:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        start = time.monotonic()
        done = subprocess.run(
            [*CLI, "demo", "--bus", f"tcp://127.0.0.1:{other.getsockname()[1]}"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1 and "in use" in done.stderr, done.stderr
    return time.monotonic() - start


def stop_s(signum: int) -> dict[str, float]:
    """Start the demo (no models), wait until its nodes serve, signal it, time the end."""
    ports = [_free_port() for _ in range(3)]
    process = subprocess.Popen(
        [*CLI, "demo", "--no-models", "--bus", f"tcp://127.0.0.1:{ports[0]}",
         "--protocol-bus", f"tcp://127.0.0.1:{ports[1]}", "--display-port", str(ports[2])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    start = time.monotonic()
    try:
        while any(_port_free(p) for p in ports):
            if time.monotonic() - start > 300 or process.poll() is not None:
                raise RuntimeError("the demo did not come up")
            time.sleep(0.2)
        up_s = time.monotonic() - start
        children = psutil.Process(process.pid).children(recursive=True)
        signalled = time.monotonic()
        process.send_signal(signum)
        _, alive = psutil.wait_procs(children, timeout=60)
        gone_s = time.monotonic() - signalled
        while not all(_port_free(p) for p in ports) and time.monotonic() - signalled < 60:
            time.sleep(0.05)
        free_s = time.monotonic() - signalled
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    return {"up_s": up_s, "nodes": len(children), "left": len(alive), "nodes_gone_s": gone_s,
            "ports_free_s": free_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, object] = {
        "taken_port_fail_s": [round(taken_port_fail_s(), 2) for _ in range(args.repeats)]
    }
    for name, signum in (("SIGTERM", signal.SIGTERM), ("SIGHUP", signal.SIGHUP),
                         ("SIGKILL", signal.SIGKILL)):  # fmt: skip
        runs = [stop_s(signum) for _ in range(args.repeats)]
        results[name] = [{k: round(v, 2) for k, v in run.items()} for run in runs]
        print(name, results[name], flush=True)
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo_stop.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
