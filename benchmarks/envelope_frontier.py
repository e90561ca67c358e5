"""The envelope's delay against its fidelity: which chain to choose for biofeedback.

For the shipped feature chains and a family of candidates with the same carrier (20-450 Hz
Butterworth N=2, 50 Hz notch Q=30 with harmonics, rectification) and a different smoother
(Butterworth N=1/N=2, Bessel N=2/N=4 at several corners, sliding RMS windows), on every channel of
the real recordings in ``../shared/data/emg`` (1 kHz, upsampled to 4096 Hz as their README
suggests; the online chain in 32-sample chunks):

- ``D``: the chain's delay over the envelope's band (``Chain.band_delay_s``, what the pipeline
  compensates with ``sync.align = "delay"``), and the lag measured on each channel by
  cross-correlation with the chain's own zero-phase envelope;
- ``r_own``: Pearson r at 30 fps of the online envelope read at ``t + D`` against the chain's
  own offline reference (zero-phase counterpart + Fourier resample, streaming.dsp.offline), as
  ``benchmarks.dsp_online_vs_offline`` measures it;
- ``r_low_latency``: the same online frames against ``low_latency``'s offline reference, the
  envelope the demo's MLPs were trained on (how much a faster chain changes what a model sees).

The first and last second (30 frames) are left out. Prints the table, writes
``benchmarks/results/envelope_frontier.json`` and, with ``--plot``, ``envelope_frontier.png``
(D against r, min-median-max over the channels).

    python -m benchmarks.envelope_frontier [--plot] [--plot-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from benchmarks.dsp_online_vs_offline import (
    CHUNK,
    DATA,
    EDGE_FRAMES,
    FRAME_RATE_HZ,
    FS,
    REAL_FILES,
    load_real_recordings,
    xcorr_lag_s,
)
from streaming.dsp.offline import interp_at, offline_envelope, offline_frames
from streaming.pipeline.features import FeatureDefinition, feature_names, get_feature

RESULTS = Path(__file__).resolve().parent / "results" / "envelope_frontier.json"

CARRIER: list[dict[str, Any]] = [
    {"kind": "butter_bandpass", "low_hz": 20.0, "high_hz": 450.0, "order": 2},
    {"kind": "notch", "freq_hz": 50.0, "q": 30.0, "max_hz": 450.0},
]
# the same with the 50 Hz notch alone: each harmonic notch holds back the EMG energy beside it,
# ~0.65 ms of carrier delay apiece (7.2 ms with the 8 harmonics below 450 Hz, 1.8 ms without)
CARRIER_50: list[dict[str, Any]] = [
    CARRIER[0],
    {"kind": "notch", "freq_hz": 50.0, "q": 30.0},
]


def candidate(
    name: str,
    smoother: list[dict[str, Any]],
    rectify: bool = True,
    carrier: list[dict[str, Any]] = CARRIER,
) -> FeatureDefinition:
    stages = carrier + ([{"kind": "rectify"}] if rectify else []) + smoother
    return FeatureDefinition.from_dict(
        {
            "name": name,
            "description": name,
            "source": "benchmarks.envelope_frontier",
            "stages": stages,
        }
    )


def candidates() -> list[FeatureDefinition]:
    """The shipped definitions, then the candidates: the ``low_latency`` carrier (notch with
    harmonics) or the 50 Hz notch alone (names ending ``/50``), with other smoothers."""
    out = [get_feature(name) for name in feature_names()]
    for carrier, tag in ((CARRIER, ""), (CARRIER_50, "/50")):
        for hz in (8.0, 10.0, 12.0, 15.0, 20.0):
            out.append(
                candidate(
                    f"butter2 {hz:g} Hz{tag}",
                    [{"kind": "butter_lowpass", "cutoff_hz": hz}],
                    carrier=carrier,
                )
            )
        for hz in (6.0, 10.0):
            out.append(
                candidate(
                    f"butter1 {hz:g} Hz{tag}",
                    [{"kind": "butter_lowpass", "cutoff_hz": hz, "order": 1}],
                    carrier=carrier,
                )
            )
        for hz in (10.0, 14.0):
            out.append(
                candidate(
                    f"bessel2 {hz:g} Hz{tag}",
                    [{"kind": "bessel_lowpass", "cutoff_hz": hz, "order": 2}],
                    carrier=carrier,
                )
            )
        for ms in (30.0, 50.0):
            window = round(ms * 1e-3 * FS)
            out.append(
                candidate(
                    f"rms {ms:g} ms{tag}",
                    [{"kind": "sliding_rms", "window_samples": window}],
                    rectify=False,
                    carrier=carrier,
                )
            )
    unique: dict[str, FeatureDefinition] = {}
    shipped = [d.stages for d in out[: len(feature_names())]]
    for d in out:  # a candidate equal to a shipped definition is shown under the shipped name
        if d.name in feature_names() or d.stages not in shipped:
            unique.setdefault(d.name, d)
    return list(unique.values())


def measure(
    definition: FeatureDefinition, records: dict[str, np.ndarray], reference: FeatureDefinition
) -> dict[str, Any]:
    """D, measured lags and r (own and ``reference``'s offline envelope) on every channel."""
    from streaming.pipeline.features import build_chain

    inner = slice(EDGE_FRAMES, -EDGE_FRAMES)
    delay = build_chain(definition, 1).band_delay_s
    channels = {}
    for key, x in records.items():
        x2 = x[:, None]
        chain = build_chain(definition, 1)
        online = np.concatenate(
            [chain.process(x2[i : i + CHUNK]) for i in range(0, len(x2), CHUNK)]
        )
        t_frames, own = offline_frames(x2, chain, FRAME_RATE_HZ)
        _, ref = offline_frames(x2, build_chain(reference, 1), FRAME_RATE_HZ)
        read = interp_at(t_frames + delay, np.arange(len(x2)) / FS, online)[inner, 0]
        skip = int(FS)
        channels[key] = {
            "r_own": float(np.corrcoef(read, own[inner, 0])[0, 1]),
            "r_low_latency": float(np.corrcoef(read, ref[inner, 0])[0, 1]),
            "measured_lag_ms": 1e3
            * xcorr_lag_s(online[skip:, 0], offline_envelope(x2, chain)[skip:, 0]),
        }

    def stats(field: str) -> dict[str, float]:
        v = np.array([c[field] for c in channels.values()])
        return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}

    return {
        "name": definition.name,
        "stages": [s.model_dump(mode="json") for s in definition.stages],
        "band_delay_ms": 1e3 * delay,
        "r_own": stats("r_own"),
        "r_low_latency": stats("r_low_latency"),
        "measured_lag_ms": stats("measured_lag_ms"),
        "channels": channels,
    }


def family(name: str) -> tuple[str, bool]:
    """A candidate's smoother family and whether its carrier notches the harmonics too."""
    if name in ("low_latency", "biofeedback"):  # Butterworth N=2 at 6 and 15 Hz
        return "butter2", True
    return name.split(" ")[0].split("/")[0], not name.endswith("/50")


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """D against r (median, min-max bars), one line per smoother family; ``mmm`` (266 ms) is
    left out of the axes and named in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"butter2": "C0", "butter1": "C1", "bessel2": "C2", "rms": "C3"}
    shipped = set(feature_names())
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, field, title in (
        (axes[0], "r_own", "r against the chain's own offline (zero-phase) envelope"),
        (axes[1], "r_low_latency", "r against low_latency's offline envelope (the models' input)"),
    ):
        for fam, colour in colours.items():
            for harmonics in (True, False):
                sel = sorted(
                    (r for r in rows if family(r["name"]) == (fam, harmonics)),
                    key=lambda r: r["band_delay_ms"],
                )
                if not sel:
                    continue
                d = [r["band_delay_ms"] for r in sel]
                med = [r[field]["median"] for r in sel]
                ax.plot(
                    d,
                    med,
                    "o-" if harmonics else "o--",
                    color=colour,
                    mfc=colour if harmonics else "white",
                    lw=1,
                    label=f"{fam}{'' if harmonics else ', 50 Hz notch only'}",
                )
        for r in rows:
            if r["name"] not in shipped or r["name"] == "mmm":
                continue
            s = r[field]
            ax.errorbar(
                r["band_delay_ms"],
                s["median"],
                yerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]],
                fmt="s",
                color="k",
                ms=7,
                capsize=4,
            )
            ax.annotate(
                f"{r['name']} (min-max)",
                (r["band_delay_ms"], s["median"]),
                fontsize=8,
                xytext=(6, -12),
                textcoords="offset points",
            )
        ax.axhline(0.95, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("delay over the envelope's band D (ms)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("r at 30 fps, median over 6 real channels")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Envelope delay vs fidelity on shared/data/emg (mmm: 266 ms, r 0.999 own, off the axes)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the real recordings")
    parser.add_argument("--plot", action="store_true", help="also draw the frontier (matplotlib)")
    parser.add_argument(
        "--plot-only", action="store_true", help="draw the frontier from --out, measure nothing"
    )
    args = parser.parse_args(argv)
    if args.plot_only:
        rows = json.loads(args.out.read_text())["rows"]
        print(f"wrote {plot(rows, args.out.with_suffix('.png'))}")
        return 0
    missing = [name for name in REAL_FILES if not (args.data / name).is_file()]
    if missing:
        print(f"real recordings not found in {args.data}: {', '.join(missing)}", file=sys.stderr)
        return 2
    records = {
        key: signal.resample_poly(x, 512, 125, padtype="line")
        for key, x in load_real_recordings(args.data).items()
    }
    reference = get_feature("low_latency")
    rows = []
    print(
        f"{'chain':<22} {'D ms':>7} {'lag ms (med)':>12} {'r own min/med':>14} "
        f"{'r low_latency min/med':>22}"
    )
    for definition in candidates():
        row = measure(definition, records, reference)
        rows.append(row)
        print(
            f"{row['name']:<22} {row['band_delay_ms']:>7.1f} "
            f"{row['measured_lag_ms']['median']:>12.1f} "
            f"{row['r_own']['min']:>6.3f}/{row['r_own']['median']:.3f} "
            f"{row['r_low_latency']['min']:>14.3f}/{row['r_low_latency']['median']:.3f}",
            flush=True,
        )
    result = {
        "benchmark": "envelope_frontier",
        "fs_hz": FS,
        "frame_rate_hz": FRAME_RATE_HZ,
        "chunk_samples": CHUNK,
        "edge_frames_left_out": EDGE_FRAMES,
        "real_data": str(args.data),
        "real_data_note": "1 kHz limb/unknown-muscle sEMG upsampled to 4096 Hz; not facial EMG",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.plot:
        print(f"wrote {plot(rows, args.out.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
