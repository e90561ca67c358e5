"""Recorder throughput: no sample lost at 4096 Hz x 64 channels plus 30 fps 1280x720 video.

A sender process pushes EMG (64 channels + a counter, float32) ``--speedup`` times faster than
real time and video at 30 fps; ``eifer record`` records both for ``--seconds``. The video is the
synthetic face source's 1280x720 frames (a real photograph, moving; no sensor noise), each
carrying its frame number in its first 16 pixels and stamped on the 30 fps schedule
(``t0 + k/30``), so every recorded frame names the frame it is. Reported: samples lost (counter
gaps in the file; must be 0); which frames are missing and where (gaps in the frame numbers read
back from the video file, at the start before the recorder connected, inside, at the end after
the stop) and that the frame-index stream's stamps name the same frames; write throughput,
recorder CPU (of one core); bytes per frame of the video file and per hour of session (30 fps,
for this content; a camera's sensor noise makes lossless frames larger, up to the raw
1280x720x3 bytes = 298.6 GB per hour).

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


def _stamp(frame: np.ndarray, k: int) -> None:
    """Write frame number ``k`` into the first 16 pixels (R, G, B = its three low bytes)."""
    frame[0, :16] = [(k >> 0) & 255, (k >> 8) & 255, (k >> 16) & 255]


def _frame_number(frame: np.ndarray) -> int:
    r, g, b = (int(np.median(frame[0, :16, c])) for c in range(3))
    return r | (g << 8) | (b << 16)


def _send(name: str, speedup: float, size: tuple[int, int], stop, sent, t0_video) -> None:
    import pylsl

    from streaming.acquisition.camera import SyntheticFaceSource
    from streaming.acquisition.camera_frames import encode_frame, video_stream_info
    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    rate, chunk, n_ch = 4096.0, 128, 64
    emg = ChunkOutlet(
        stream_info(f"{name}-EMG", "EMG", n_ch + 1, rate, "float32", f"{name}-emg"),
        max_buffered_s=60,
    )
    width, height = size
    video = ChunkOutlet(
        video_stream_info(f"{name}-Camera", width, height, 30.0, f"{name}-cam"), max_buffered_s=10
    )
    source = SyntheticFaceSource(width, height, 30.0)
    source.open()
    scene = [source.read().rgb for _ in range(60)]  # 2 s of the moving face, then looped
    source.close()
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 20, (chunk * 64, n_ch)).astype(np.float32)
    t0 = pylsl.local_clock()
    t0_video.value = t0
    k = frames = 0
    while not stop.is_set():
        now = pylsl.local_clock()
        while k < (now - t0) * rate * speedup:
            data = np.empty((chunk, n_ch + 1), np.float32)
            data[:, :n_ch] = noise[(k % (chunk * 64)) : (k % (chunk * 64)) + chunk]
            data[:, n_ch] = np.arange(k, k + chunk) % 2**24
            emg.push(data, t0 + (k + chunk - 1) / (rate * speedup))
            k += chunk
        while frames <= (now - t0) * 30.0:
            frame = scene[frames % len(scene)].copy()
            _stamp(frame, frames)
            video.push(encode_frame(frame), t0 + frames / 30.0)  # stamped on the schedule
            frames += 1
        sent[0], sent[1] = k, frames
        time.sleep(0.002)


def missing_frames(recorded: np.ndarray, sent: int) -> dict:
    """Where the frames 0..sent-1 missing from ``recorded`` (sender frame numbers) lie."""
    got = np.unique(recorded)
    first, last = (int(got[0]), int(got[-1])) if got.size else (sent, sent - 1)
    inside = sorted(set(range(first, last + 1)) - set(got.tolist()))
    runs: list[list[int]] = []
    for k in inside:  # consecutive missing frames as [first, count]
        if runs and k == runs[-1][0] + runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([k, 1])
    return {
        "before_first_recorded": first,
        "after_last_recorded": sent - 1 - last,
        "inside": len(inside),
        "inside_gaps": [
            {"first_frame": a, "frames": n, "at_s": round(a / 30.0, 3)} for a, n in runs
        ],
        "duplicates": int(recorded.size - got.size),
    }


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
    load_before = os.getloadavg()[0]
    ctx = mp.get_context("spawn")
    stop, sent, t0_video = ctx.Event(), ctx.Array("q", 2), ctx.Value("d", 0.0)
    sender = ctx.Process(
        target=_send, args=(name, args.speedup, (width, height), stop, sent, t0_video)
    )
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
        video_files = list(folder.glob("*.mkv"))
        video_bytes = sum(p.stat().st_size for p in video_files)
        xdf_bytes = (folder / "session.xdf").stat().st_size  # EMG + frame index + clock offsets
        streams, _ = pyxdf.load_xdf(
            str(folder / "session.xdf"), synchronize_clocks=False, dejitter_timestamps=False
        )
        by_name = {s["info"]["name"][0]: s for s in streams}
        counter = by_name[f"{name}-EMG"]["time_series"][:, -1].astype(np.int64)
        index_stream = by_name[f"{name}-Camera"]
        frames = index_stream["time_series"][:, 0]
        # which sender frame each index entry is, from its stamp on the 30 fps schedule
        by_stamp = np.round((index_stream["time_stamps"] - t0_video.value) * 30.0).astype(int)
        from streaming.recording.video_file import VideoReader

        with VideoReader(video_files[0]) as reader:
            in_file = np.array([_frame_number(f) for f in reader])
    gaps = int(np.sum(np.diff(counter) - 1))
    where = missing_frames(in_file, int(sent[1]))
    stamps_agree = bool(by_stamp.size == in_file.size and np.array_equal(by_stamp, in_file))
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
        "video_frames_in_file": int(in_file.size),
        "video_frames_missing": where,
        "frame_index_stamps_match_video_file": stamps_agree,
        "bytes": size_bytes,
        "video_bytes": video_bytes,
        "video_bytes_per_frame": video_bytes / max(1, in_file.size),
        "video_gb_per_hour_at_30_fps": video_bytes / max(1, in_file.size) * 30 * 3600 / 1e9,
        "raw_rgb_gb_per_hour_at_30_fps": width * height * 3 * 30 * 3600 / 1e9,
        "xdf_bytes": xdf_bytes,
        "emg_gb_per_hour_at_4096_hz": xdf_bytes / max(1, len(counter)) * 4096 * 3600 / 1e9,
        "write_mb_per_s": size_bytes / 1e6 / args.seconds,
        "recorder_cpu_cores": cpu,
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "gb_per_hour_of_session": (
            video_bytes / max(1, in_file.size) * 30 + xdf_bytes / max(1, len(counter)) * 4096
        )
        * 3600
        / 1e9,
    }
    for key, value in result.items():
        print(f"{key:<36} {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recording_throughput.json").write_text(json.dumps(result, indent=2))
    ok = gaps == 0 and where["inside"] == 0 and where["duplicates"] == 0 and stamps_agree
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
