"""Online EMG DSP throughput, as a multiple of real time, on one pinned CPU core.

For 22 and 64 channels at 4096 Hz and several chunk sizes (32 samples = 7.8 ms, as an amplifier
delivers, and larger), feeds float32 chunks (what an LSL float32 inlet returns) through:

- ``low_latency`` and ``mmm``: the project's feature chains
  (streaming.pipeline.features.build_chain), whose runs of IIR filters and rectifications go through
  one compiled kernel per chunk (streaming.dsp.kernels);
- ``low_latency_per_stage``: the same chain on the per-stage path (one ``sosfilt`` per stage,
  ``Chain(..., fuse=False)``), the implementation before issue 20;
- ``mne_lsl``: the peer, MNE-LSL's online filtering of the same job. MNE-LSL's ``StreamLSL``
  filters only inside a live stream's acquisition thread, so its per-chunk call sequence
  (mne_lsl/stream/stream_lsl.py ``_acquire``: per filter, ``zi = zi_unit * mean(chunk)`` on the
  first chunk, then ``sosfilt(sos, data[:, picks], zi=zi, axis=0)`` and write back) is reproduced
  here around filters built by MNE-LSL's own ``mne_lsl.stream._filters.create_filter`` (as
  ``Stream.filter`` and ``Stream.notch_filter`` build them): band-pass 20-450 Hz (order 2),
  ``notch_filter`` at 50, 100, ..., 450 Hz (its default: Butterworth band-stop, order 4, width
  f/200 + 1 Hz transition), then ``abs`` (a callback) and a 6 Hz order-2 low-pass through the
  same sequence. Same job as ``low_latency``; MNE-LSL's notches are 4 sections each where ours
  are 1 (``iirnotch``).

Checks, stored with the figures: the same-SOS check (MNE-LSL's call sequence around our SOS
computes our output), and ``fused_vs_per_stage``: the largest difference between the fused and
the per-stage outputs of the same float32 chunks (0: the kernel does scipy's operations in
scipy's order).

Prints a table and writes ``benchmarks/results/dsp_throughput.json`` (with the 1-minute load
average: the machine may be shared).
Run: ``.venv/bin/python -m benchmarks.dsp_throughput [--seconds 8] [--repeats 3]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.signal import sosfilt, sosfilt_zi  # noqa: E402

from streaming.dsp import Chain  # noqa: E402
from streaming.pipeline.features import build_chain  # noqa: E402

FS = 4096.0
RESULTS = Path(__file__).resolve().parent / "results" / "dsp_throughput.json"


def pin_one_core() -> int | None:
    """Pin this process to one CPU (the last allowed one); returns it, or None if unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def mne_lsl_processor(
    n_channels: int, same_sos: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """MNE-LSL's per-chunk filtering sequence around MNE-LSL-designed filters.

    ``same_sos=True`` swaps in the SOS of our ``low_latency`` stages (same call sequence, same
    filters as ours), to separate the cost of the call pattern from that of the designs.
    """
    from mne_lsl.stream._filters import StreamFilter, create_filter

    def make(l_freq: float | None, h_freq: float | None, order: int) -> StreamFilter:
        filt = create_filter(FS, l_freq, h_freq, dict(order=order, ftype="butter", output="sos"))
        filt.update(picks=np.arange(n_channels))
        return StreamFilter(filt)

    pre = [make(20.0, 450.0, 2)]
    for f in np.arange(50.0, 451.0, 50.0):  # Stream.notch_filter(f) defaults
        width, trans = f / 200.0, 1.0
        pre.append(make(f + width / 2 + trans / 2, f - width / 2 - trans / 2, 4))
    post = [make(None, 6.0, 2)]
    if same_sos:
        ours = build_chain("low_latency", n_channels).stages
        pre = pre[:2]
        for filt, stage in zip(pre + post, (ours[0], ours[1], ours[3]), strict=True):
            filt["sos"] = stage.sos
            filt["zi_unit"] = sosfilt_zi(stage.sos)[..., np.newaxis]

    def apply(filters: list[StreamFilter], data: np.ndarray) -> None:
        for filt in filters:  # stream_lsl.py _acquire, verbatim in substance
            if filt["zi"] is None:
                filt["zi"] = filt["zi_unit"] * np.mean(data[:, filt["picks"]], axis=0)
            data_filtered, filt["zi"] = sosfilt(
                filt["sos"], data[:, filt["picks"]], zi=filt["zi"], axis=0
            )
            data[:, filt["picks"]] = data_filtered

    def process(chunk: np.ndarray) -> np.ndarray:
        data = chunk.copy()
        apply(pre, data)
        data = np.abs(data)  # a Stream callback
        apply(post, data)
        return data

    return process


def same_sos_check(seconds: float = 4.0) -> dict[str, float]:
    """With our SOS, MNE-LSL's call sequence computes our output (after start-up: it initialises
    from the first chunk's mean, we from the first sample). Returns the max abs difference in the
    last half relative to the envelope's max."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((int(seconds * FS), 4)) * 50 + 300).astype(np.float32)
    chunks = [x[i : i + 32] for i in range(0, x.shape[0], 32)]
    ours, chain = [], build_chain("low_latency", 4)
    peer, seq = [], mne_lsl_processor(4, same_sos=True)
    for c in chunks:
        ours.append(chain.process(c))
        peer.append(seq(c.astype(np.float64)))
    a, b = np.concatenate(ours), np.concatenate(peer)
    half = a.shape[0] // 2
    return {"max_abs_diff_rel": float(np.max(np.abs(a[half:] - b[half:])) / np.max(a[half:]))}


def fused_vs_per_stage(n_channels: int = 64, seconds: float = 4.0) -> dict[str, float]:
    """Max abs difference (relative to the envelope's max) between the fused chain and the
    per-stage path on the same float32 32-sample chunks, per feature."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((int(seconds * FS), n_channels)) * 50 + 300).astype(np.float32)
    out = {}
    for feature in ("low_latency", "mmm"):
        fused = build_chain(feature, n_channels)
        slow = Chain(build_chain(feature, n_channels).stages, fuse=False)
        a = np.concatenate([fused.process(x[i : i + 32]) for i in range(0, x.shape[0], 32)])
        b = np.concatenate([slow.process(x[i : i + 32]) for i in range(0, x.shape[0], 32)])
        out[feature] = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    return out


def time_run(
    make: Callable[[], Callable[[np.ndarray], np.ndarray]], x: np.ndarray, chunk: int, repeats: int
) -> float:
    """Best wall time (s) to process ``x`` in ``chunk``-sample chunks with a fresh processor."""
    chunks = [x[i : i + chunk] for i in range(0, x.shape[0], chunk)]
    best = np.inf
    for _ in range(repeats):
        process = make()
        process(chunks[0])  # first calls design, initialise and load the kernel; not timed
        process(chunks[1])
        t0 = time.perf_counter()
        for c in chunks[2:]:
            process(c)
        best = min(best, time.perf_counter() - t0)
    return best * len(chunks) / max(1, len(chunks) - 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="signal length per case")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs")
    parser.add_argument("--channels", type=int, nargs="+", default=[22, 64])
    parser.add_argument("--chunks", type=int, nargs="+", default=[32, 256, 4096])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    cpu = pin_one_core()
    rng = np.random.default_rng(0)
    rows = []
    print(
        f"DSP throughput, {FS:.0f} Hz float32 chunks, {args.seconds:g} s of signal, "
        f"best of {args.repeats}, pinned to CPU {cpu}"
    )
    print(
        f"{'channels':>8} {'chunk':>6} {'low_latency':>12} {'per_stage':>10} {'mmm':>10} "
        f"{'mne_lsl':>10} {'mne_seq_our_sos':>16} {'low_lat/mne_lsl':>16}   (x real time)"
    )
    for n_ch in args.channels:
        x = (rng.standard_normal((int(args.seconds * FS), n_ch)) * 50 + 300).astype(np.float32)
        for chunk in args.chunks:
            rt = {}
            for name, make in (
                ("low_latency", lambda n=n_ch: build_chain("low_latency", n).process),
                (
                    "low_latency_per_stage",
                    lambda n=n_ch: Chain(build_chain("low_latency", n).stages, fuse=False).process,
                ),
                ("mmm", lambda n=n_ch: build_chain("mmm", n).process),
                ("mne_lsl", lambda n=n_ch: mne_lsl_processor(n)),
                ("mne_seq_our_sos", lambda n=n_ch: mne_lsl_processor(n, same_sos=True)),
            ):
                rt[name] = args.seconds / time_run(make, x, chunk, args.repeats)
            ratio = rt["low_latency"] / rt["mne_lsl"]
            rows.append(
                {
                    "channels": n_ch,
                    "chunk_samples": chunk,
                    "realtime_factor": rt,
                    "ratio_low_latency_vs_mne_lsl": ratio,
                }
            )
            print(
                f"{n_ch:>8} {chunk:>6} {rt['low_latency']:>12.1f} "
                f"{rt['low_latency_per_stage']:>10.1f} {rt['mmm']:>10.1f} "
                f"{rt['mne_lsl']:>10.1f} {rt['mne_seq_our_sos']:>16.1f} {ratio:>16.2f}",
                flush=True,
            )
    result = {
        "benchmark": "dsp_throughput",
        "unit": "multiple of real time (seconds of signal processed per second of CPU)",
        "fs_hz": FS,
        "seconds_per_case": args.seconds,
        "repeats": args.repeats,
        "pinned_cpu": cpu,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "peer": "mne_lsl: StreamLSL._acquire per-chunk sosfilt sequence reproduced around "
        "mne_lsl.stream._filters.create_filter designs (band-pass 20-450 N=2, "
        "notch_filter defaults at 50..450 Hz, abs, 6 Hz N=2 low-pass)",
        "load_average_1min": os.getloadavg()[0],
        "same_sos_check": same_sos_check(),
        "fused_vs_per_stage_max_abs_diff_rel": fused_vs_per_stage(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"same-SOS check (our output vs MNE-LSL sequence): {result['same_sos_check']}")
    print(f"fused vs per-stage: {result['fused_vs_per_stage_max_abs_diff_rel']}")
    print(f"load average (1 min): {result['load_average_1min']:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
