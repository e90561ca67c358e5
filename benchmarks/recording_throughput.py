"""Recorder throughput: no sample lost at 4096 Hz x 64 channels plus 30 fps 1280x720 video.

A sender process pushes EMG (64 channels + a counter, float32) ``--speedup`` times faster than
real time and video at 30 fps; ``eifer record`` records both for ``--seconds``. Reported: samples
lost (counter gaps in the file; must be 0), frames recorded vs sent, write throughput, recorder CPU
(of one core), bytes per hour of real-time session.

    python -m benchmarks.recording_throughput [--seconds 30] [--speedup 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _send(name: str, speedup: float, size: tuple[int, int], stop, sent) -> None:
    import pylsl

    from streaming.camera.frames import encode_frame, video_stream_info
    from streaming.lsl_io import ChunkOutlet, stream_info

    rate, chunk, n_ch = 4096.0, 128, 64
    emg = ChunkOutlet(
        stream_info(f"{name}-EMG", "EMG", n_ch + 1, rate, "float32", f"{name}-emg"),
        max_buffered_s=60,
    )
    width, height = size
    video = ChunkOutlet(
        video_stream_info(f"{name}-Camera", width, height, 30.0, f"{name}-cam"), max_buffered_s=10
    )
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 20, (chunk * 64, n_ch)).astype(np.float32)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    t0 = pylsl.local_clock()
    k = frames = 0
    while not stop.is_set():
        now = pylsl.local_clock()
        while k < (now - t0) * rate * speedup:
            data = np.empty((chunk, n_ch + 1), np.float32)
            data[:, :n_ch] = noise[(k % (chunk * 64)) : (k % (chunk * 64)) + chunk]
            data[:, n_ch] = np.arange(k, k + chunk) % 2**24
            emg.push(data, t0 + (k + chunk - 1) / (rate * speedup))
            k += chunk
        if frames < (now - t0) * 30.0:
            frame[0, : frames % width] = frames % 256  # frames differ
            video.push(encode_frame(frame), now)
            frames += 1
        sent[0], sent[1] = k, frames
        time.sleep(0.002)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--speedup", type=float, default=4.0, help="EMG pushed this many times real time"
    )
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args(argv)
    os.environ.setdefault(
        "LSLAPICFG", str(Path(__file__).resolve().parents[1] / "tests" / "lsl_api.cfg")
    )
    import psutil
    import pyxdf

    width, height = (int(v) for v in args.size.split("x"))
    name = f"bench{os.getpid()}"
    ctx = mp.get_context("spawn")
    stop, sent = ctx.Event(), ctx.Array("q", 2)
    sender = ctx.Process(target=_send, args=(name, args.speedup, (width, height), stop, sent))
    sender.start()
    with tempfile.TemporaryDirectory() as root:
        recorder = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "record", "--root", root, "--session", "s", "--quiet",
             "--stream", f"{name}-EMG", "--stream", f"{name}-Camera"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        proc = psutil.Process(recorder.pid)
        proc.cpu_percent()
        time.sleep(args.seconds)
        cpu = proc.cpu_percent() / 100.0
        stop.set()
        sender.join(10)
        time.sleep(2.0)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
        folder = Path(root) / "s"
        size_bytes = sum(p.stat().st_size for p in folder.iterdir())
        streams, _ = pyxdf.load_xdf(
            str(folder / "session.xdf"), synchronize_clocks=False, dejitter_timestamps=False
        )
        by_name = {s["info"]["name"][0]: s for s in streams}
        counter = by_name[f"{name}-EMG"]["time_series"][:, -1].astype(np.int64)
        frames = by_name[f"{name}-Camera"]["time_series"][:, 0]
    gaps = int(np.sum(np.diff(counter) - 1))
    result = {
        "benchmark": "recording_throughput",
        "seconds": args.seconds,
        "emg": {"channels": 64, "rate_hz": 4096, "speedup": args.speedup},
        "video": {"width": width, "height": height, "fps": 30},
        "emg_samples_sent": int(sent[0]),
        "emg_samples_recorded": len(counter),
        "emg_samples_lost_inside_recording": gaps,
        "video_frames_sent": int(sent[1]),
        "video_frames_recorded": len(frames),
        "bytes": size_bytes,
        "write_mb_per_s": size_bytes / 1e6 / args.seconds,
        "recorder_cpu_cores": cpu,
        "gb_per_hour_of_session": size_bytes / args.seconds * 3600 / 1e9,
    }
    for key, value in result.items():
        print(f"{key:<36} {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recording_throughput.json").write_text(json.dumps(result, indent=2))
    return 0 if gaps == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
