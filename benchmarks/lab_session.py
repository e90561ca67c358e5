"""A lab session driven like LabRecorder: reply times of the remote-control commands, what the
run's XDF and video hold, and how fast SIGTERM ends every node.

``eifer session`` runs the EMG simulator (22 channels + counter, 4096 Hz), the synthetic camera
(1280x720 at 30 fps, each frame stamped at capture) and the recorder with remote control; a
plain socket sends ``select all``, ``filename {...}``, ``start``, waits ``--seconds``, ``stop``
(each ``--runs`` times: run-001, run-002, ...), then the session gets SIGTERM. Reported per run:
seconds until ``start``'s and ``stop``'s ``OK`` (after ``stop``'s the XDF is complete), EMG
samples and video frames saved against the recorded time span; then seconds from SIGTERM until
every node process has ended. LSL discovery is isolated by an own ``SessionID``.

    python -m benchmarks.lab_session [--seconds 10] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(sock: socket.socket, command: str) -> tuple[str, float]:
    start = time.monotonic()
    sock.sendall(command.encode() + b"\n")
    reply = b""
    while reply != b"OK" and not reply.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        reply += chunk
    return reply.decode(), time.monotonic() - start


def _connect(port: int, process: subprocess.Popen, timeout_s: float = 300) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=300)
        except ConnectionRefusedError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the session's recorder did not come up") from None
            time.sleep(0.5)


def _session_file(folder: Path, tag: str, port: int) -> Path:
    path = folder / "session.toml"
    path.write_text(f"""
name = "bench"
[nodes.emg]
command = ["node", "emg", "--name", "EMG-{tag}"]
stream = "EMG-{tag}"
start_timeout_s = 300.0
[nodes.camera]
command = ["node", "camera", "--source", "synthetic", "--name", "Camera-{tag}"]
stream = "Camera-{tag}"
start_timeout_s = 300.0
[nodes.recorder]
command = ["record", "--remote", "--remote-port", "{port}", "--quiet"]
records = true
[nodes.recorder.set]
required_streams = ["EMG-{tag}", "Camera-{tag}"]
required_wait_s = 30.0
missing_required = "refuse"
""")
    return path


def _saved(xdf: Path, tag: str) -> dict[str, float]:
    import pyxdf

    from streaming.recording.video_file import VideoReader

    streams, _ = pyxdf.load_xdf(str(xdf), synchronize_clocks=False, dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    emg, index = by_name[f"EMG-{tag}"], by_name[f"Camera-{tag}"]
    counter = emg["time_series"][:, -1].astype(int)
    gaps = int(((counter[1:] - counter[:-1]) % (1 << 24) != 1).sum())
    span_s = float(emg["time_stamps"][-1] - emg["time_stamps"][0])
    video = xdf.with_name(f"{xdf.stem}_Camera-{tag}.mkv")
    with VideoReader(video) as reader:
        frames = len(reader)  # packets indexed in the file
    return {
        "emg_span_s": span_s,
        "emg_samples": int(emg["time_series"].shape[0]),
        "emg_samples_expected": round(span_s * 4096) + 1,
        "emg_counter_gaps": gaps,
        "frame_index_rows": int(index["time_series"].shape[0]),
        "video_frames": frames,
        "xdf_mb": xdf.stat().st_size / 1e6,
        "video_mb": video.stat().st_size / 1e6,
    }


def run(seconds: float, runs: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="eifer-bench-lab-"))
    tag, port = uuid.uuid4().hex[:8], _free_port()
    cfg = work / "lsl_api.cfg"
    cfg.write_text(
        "[multicast]\nResolveScope = machine\n\n[ports]\nIPv6 = disable\n\n"
        f"[lab]\nSessionID = bench-{tag}\n\n[log]\nlevel = -2\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "session", "--config",
         str(_session_file(work, tag, port))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
        env={**os.environ, "LSLAPICFG": str(cfg), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    results: dict[str, object] = {"seconds": seconds, "load_avg_1min": os.getloadavg()[0]}
    try:
        sock = _connect(port, process)
        study = work / "study"
        _send(sock, "select all")
        _send(sock, f"filename {{root:{study}}} {{participant:B01}} {{task:bench}}")
        per_run = []
        for _ in range(runs):
            reply, start_s = _send(sock, "start")
            assert reply == "OK", reply
            time.sleep(seconds)
            reply, stop_s = _send(sock, "stop")
            assert reply == "OK", reply
            per_run.append({"start_reply_s": start_s, "stop_reply_s": stop_s})
        sock.close()
        for n, entry in enumerate(per_run, 1):
            xdf = study / f"sub-B01/ses-S001/emg/sub-B01_ses-S001_task-bench_run-{n:03d}_emg.xdf"
            entry.update(_saved(xdf, tag))
            print(n, {k: round(v, 3) for k, v in entry.items()}, flush=True)
        results["runs"] = [{k: round(v, 3) for k, v in e.items()} for e in per_run]
        nodes = psutil.Process(process.pid).children(recursive=True)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(nodes, timeout=120)
        results["sigterm"] = {
            "nodes": len(nodes),
            "left": len(alive),
            "nodes_gone_s": round(time.monotonic() - signalled, 2),
            "session_exit": process.wait(60),
        }
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)  # ~180 MB of lossless video per run
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    results = run(args.seconds, args.runs)
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lab_session.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
