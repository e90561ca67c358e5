"""Online (causal) EMG envelopes against the paper's offline method, on real and simulated EMG.

For each EMG feature (``low_latency``, ``mmm``) and each channel of
- the real surface-EMG recordings in ``../shared/data/emg`` (1 kHz, upsampled to 4096 Hz with
  ``resample_poly(x, 512, 125)`` as that folder's README suggests; not facial EMG), and
- a simulated record (research note emg_processing.md 3.4: 20-450 Hz noise in bursts with 200 ms
  ramps plus 20 uV 50 Hz hum, 20 s, 2 channels),
the online chain runs in 32-sample chunks (an amplifier's packets) and the offline reference
(zero-phase counterpart + ``scipy.signal.resample`` to 30 fps, streaming.dsp.offline) runs on the
whole record. Printed and stored per channel: Pearson r of the online envelope read at each frame
time ``t + D`` against the offline frames, with ``D`` the chain's reported delay over the
envelope's band, at DC, and 0; the lag measured by cross-correlation at 4096 Hz; the record's
median frequency; for ``mmm``, r against the former offline reference that left the high-pass out
(mean removal only). Also stored: the 6 Hz envelope low-pass's group delay at 0-5 Hz. The first
and last second (30 frames) are left out: start-up of the filters and the Fourier resample's
wrap-around.

    python -m benchmarks.dsp_online_vs_offline [--plot]

Writes ``benchmarks/results/dsp_online_vs_offline.json`` (and ``.png`` with ``--plot``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import scipy
from scipy import signal

from streaming.dsp import Chain, SosFilter, envelope_lowpass
from streaming.dsp.offline import interp_at, offline_envelope, offline_frames
from streaming.pipeline.features import build_chain

FS = 4096.0
FRAME_RATE_HZ = 30.0
EDGE_FRAMES = 30
CHUNK = 32
FEATURES = ("low_latency", "mmm")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "emg"
RESULTS = Path(__file__).resolve().parent / "results" / "dsp_online_vs_offline.json"


REAL_FILES = ("bbcontractions.csv", "biosppy_emg_1.txt", "uci_lower_limb_5Nmar.txt")


def load_real_recordings(data: Path = DATA) -> dict[str, np.ndarray]:
    """Every channel of the three recordings at 1 kHz, keyed ``file:channel`` (their README)."""
    out = {
        "bbcontractions:0": np.loadtxt(data / "bbcontractions.csv"),
        "biosppy_emg_1:0": np.loadtxt(data / "biosppy_emg_1.txt", comments="#"),
    }
    rows = []
    for line in (data / "uci_lower_limb_5Nmar.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) == 5:
            try:
                rows.append([float(v) for v in fields])
            except ValueError:  # column names
                continue
    uci = np.array(rows)
    names = ("RF", "BF", "VM", "ST")  # columns 1-4: EMG in mV; column 5 is the knee angle
    out |= {f"uci_lower_limb_5Nmar:{c} {names[c]}": uci[:, c] for c in range(4)}
    return out


def simulated_record(seconds: float = 20.0, n_channels: int = 2, seed: int = 7) -> np.ndarray:
    """Research note 3.4: shaped noise in bursts (200 ms ramps, ~61 uV envelope) + 50 Hz hum."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    amp = np.zeros(n)
    for start, end in [(2.0, 5.0), (8.0, 10.0), (12.5, 16.0)]:
        ramp = np.minimum(np.clip((t - start) / 0.2, 0, 1), np.clip((end + 0.2 - t) / 0.2, 0, 1))
        amp = np.maximum(amp, ramp)
    sos = signal.butter(4, [20, 450], btype="bandpass", output="sos", fs=FS)
    noise = signal.sosfiltfilt(sos, rng.standard_normal((n, n_channels)), axis=0)
    noise *= 61.0 / np.sqrt(2 / np.pi) / noise.std(axis=0, keepdims=True)
    phase = rng.uniform(0, 2 * np.pi, n_channels)
    hum = 20.0 * np.sin(2 * np.pi * 50.0 * t[:, None] + phase[None, :])
    return noise * amp[:, None] + hum


def xcorr_lag_s(online: np.ndarray, offline: np.ndarray, max_lag_s: float = 0.4) -> float:
    """Lag (s) of ``online`` behind ``offline`` at their cross-correlation peak (parabola)."""
    a, b, m = online - online.mean(), offline - offline.mean(), int(max_lag_s * FS)
    n = len(a)
    cc = np.array([np.dot(a[k : n - m + k], b[: n - m]) for k in range(m + 1)])
    i = int(np.clip(np.argmax(cc), 1, m - 1))
    return float((i + 0.5 * (cc[i - 1] - cc[i + 1]) / (cc[i - 1] - 2 * cc[i] + cc[i + 1])) / FS)


def compare(x: np.ndarray, feature: str) -> dict[str, float]:
    """Online vs offline for one channel ``x`` (n,) at 4096 Hz."""
    chain = build_chain(feature, 1)
    x2 = x[:, None]
    online = np.concatenate([chain.process(x2[i : i + CHUNK]) for i in range(0, len(x2), CHUNK)])
    t_frames, frames = offline_frames(x2, chain, FRAME_RATE_HZ)
    t_samples = np.arange(len(x2)) / FS
    inner = slice(EDGE_FRAMES, -EDGE_FRAMES)

    def r_at(delay_s: float) -> float:
        read = interp_at(t_frames + delay_s, t_samples, online)
        return float(np.corrcoef(read[inner, 0], frames[inner, 0])[0, 1])

    skip = int(FS)  # start-up
    lag = xcorr_lag_s(online[skip:, 0], offline_envelope(x2, chain)[skip:, 0])
    f, psd = signal.welch(x - x.mean(), fs=FS, nperseg=4096)
    extra = {}
    if any(isinstance(s, SosFilter) and s.name == "high_pass" for s in chain.stages):
        # the former reference: mean removal only, the high-pass left out offline
        without = Chain([s for s in chain.stages if s.name != "high_pass"])
        _, frames_without = offline_frames(x2, without, FRAME_RATE_HZ)
        read = interp_at(t_frames + chain.band_delay_s, t_samples, online)
        extra["r_offline_without_high_pass"] = float(
            np.corrcoef(read[inner, 0], frames_without[inner, 0])[0, 1]
        )
    return {
        "r_band_delay": r_at(chain.band_delay_s),
        "r_dc_delay": r_at(chain.dc_delay_s),
        "r_uncompensated": r_at(0.0),
        "r_measured_lag": r_at(lag),
        "measured_lag_ms": 1e3 * lag,
        "band_delay_ms": 1e3 * chain.band_delay_s,
        "dc_delay_ms": 1e3 * chain.dc_delay_s,
        "seconds": len(x) / FS,
        "median_frequency_hz": float(f[np.searchsorted(np.cumsum(psd) / psd.sum(), 0.5)]),
        **extra,
    }


def plot(records: dict[str, np.ndarray], path: Path) -> Path:
    """Figure: online (read at t + D) vs offline frames, per feature, on one simulated and one
    real channel. Needs matplotlib (not a project dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["simulated:0", "biosppy_emg_1:0"]
    fig, axes = plt.subplots(len(FEATURES), len(keys), figsize=(13, 6))
    for row, feature in enumerate(FEATURES):
        for col, key in enumerate(keys):
            ax, x = axes[row, col], records[key][:, None]
            chain = build_chain(feature, 1)
            online = chain.process(x)
            t = np.arange(len(x)) / FS
            t_frames, frames = offline_frames(x, chain)
            shifted = interp_at(t_frames + chain.band_delay_s, t, online)[:, 0]
            ax.plot(t, online[:, 0], lw=0.6, color="0.6", label="online, causal (4096 Hz)")
            ax.plot(t_frames, frames[:, 0], lw=1.4, label="offline: zero-phase + resample")
            ax.plot(
                t_frames,
                shifted,
                "--",
                lw=1.0,
                label=f"online at t + {1e3 * chain.band_delay_s:.1f} ms",
            )
            ax.set_title(f"{feature}, {key}", fontsize=9)
            ax.legend(loc="upper right", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the real recordings")
    parser.add_argument("--plot", action="store_true", help="also draw a figure (matplotlib)")
    args = parser.parse_args(argv)
    missing = [name for name in REAL_FILES if not (args.data / name).is_file()]
    if missing:
        print(
            f"benchmarks.dsp_online_vs_offline: error: real recordings not found in {args.data} "
            f"({', '.join(missing)}): pass --data FOLDER (../shared/data/emg of the checkout)",
            file=sys.stderr,
        )
        return 2

    records = {
        key: signal.resample_poly(x, 512, 125, padtype="line")
        for key, x in load_real_recordings(args.data).items()
    }
    sim = simulated_record()
    records |= {f"simulated:{c}": sim[:, c] for c in range(sim.shape[1])}
    rows = []
    print(f"online vs offline, r at {FRAME_RATE_HZ:g} fps ({EDGE_FRAMES} edge frames left out)")
    print(
        f"{'record':<32} {'feature':<12} {'r (t+D)':>8} {'r (DC)':>8} {'r (t)':>8} "
        f"{'lag ms':>7} {'D ms':>6} {'f50 Hz':>6} {'r (offline without high-pass)':>8}"
    )
    for key, x in records.items():
        for feature in FEATURES:
            row = {"record": key, "feature": feature, **compare(x, feature)}
            rows.append(row)
            without = row.get("r_offline_without_high_pass")
            print(
                f"{key:<32} {feature:<12} {row['r_band_delay']:>8.4f} {row['r_dc_delay']:>8.4f} "
                f"{row['r_uncompensated']:>8.4f} {row['measured_lag_ms']:>7.1f} "
                f"{row['band_delay_ms']:>6.1f} {row['median_frequency_hz']:>6.0f}"
                + ("" if without is None else f" {without:>8.4f}"),
                flush=True,
            )
    summary = {}
    for source in ("real", "simulated"):
        for feature in FEATURES:
            sel = [
                r
                for r in rows
                if r["feature"] == feature
                and r["record"].startswith("simulated") == (source == "simulated")
            ]
            summary[f"{source}/{feature}"] = {
                "r_band_delay_min": min(r["r_band_delay"] for r in sel),
                "r_band_delay_max": max(r["r_band_delay"] for r in sel),
                "measured_lag_ms_min": min(r["measured_lag_ms"] for r in sel),
                "measured_lag_ms_max": max(r["measured_lag_ms"] for r in sel),
                "band_delay_ms": sel[0]["band_delay_ms"],
                "dc_delay_ms": sel[0]["dc_delay_ms"],
                "channels": len(sel),
            }
    print("\nsummary (r after compensating the reported band delay; lags measured):")
    for name, s in summary.items():
        print(
            f"  {name:<22} r {s['r_band_delay_min']:.4f}-{s['r_band_delay_max']:.4f}, "
            f"lag {s['measured_lag_ms_min']:.1f}-{s['measured_lag_ms_max']:.1f} ms, "
            f"reported {s['band_delay_ms']:.1f} ms (DC {s['dc_delay_ms']:.1f} ms), "
            f"{s['channels']} channels"
        )
    result = {
        "benchmark": "dsp_online_vs_offline",
        "fs_hz": FS,
        "frame_rate_hz": FRAME_RATE_HZ,
        "edge_frames_left_out": EDGE_FRAMES,
        "chunk_samples": CHUNK,
        "real_data": str(args.data),
        "real_data_note": "1 kHz limb/unknown-muscle sEMG upsampled to 4096 Hz; not facial EMG",
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "envelope_lowpass_6hz_group_delay_ms": {
            f"{hz:g} Hz": 1e3 * float(envelope_lowpass(6, 2, 1, FS).group_delay_curve_s([hz])[0])
            for hz in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
        },
        "summary": summary,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.plot:
        print(f"wrote {plot(records, args.out.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
