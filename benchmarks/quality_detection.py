"""Electrode-quality detection on a long simulated session, and its CPU cost (issue 21).

A protocol session (the simulator's built-in protocol, looped) of ``--minutes`` at 4096 Hz on the
22 Fridlund channels, with ``--faults`` electrode faults at random times, random channels (one
fault per channel at a time) and random kinds, all seven of the simulator's own (``flat``,
``railed``, ``spikes``, ``dropout``, ``hum`` at 60 uV on one channel, ``bridge`` with a face
neighbour, ``lifting`` over 6 s into 50 uV of broadband noise and 100 uV of hum), scored against
the simulator's fault windows (``EmgSimulator.fault_windows``). The monitor (streaming.dsp.quality, shipped configs/quality.toml)
reads it in 32-sample chunks with the protocol's movement markers, faster than real time.

Scored per fault: detection delay (first report flagging the fault's reason on its channel, from
the fault's start, or from its first event for the intermittent ``spikes`` / ``dropout``) and
clearing delay (from its end until the channel is ``good`` again; from the last event's decay for
the intermittent kinds); per clean channel-hour (channels without a fault, more than 2 s away from
one of their own): episodes of ``check`` and of ``bad``.

CPU: the monitor alone on pre-generated 22- and 64-channel signals, 32-sample chunks, one pinned
core: CPU seconds per second of signal.

Prints a table and writes ``benchmarks/results/quality_detection.json``.
Run: ``.venv/bin/python -m benchmarks.quality_detection [--minutes 15] [--faults 24] [--seed 0]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from benchmarks.dsp_throughput import pin_one_core  # noqa: E402
from configs import config_path  # noqa: E402
from simulation.emg import EmgSimulator, FaultConfig, ScriptConfig, SimulatorConfig  # noqa: E402
from streaming.dsp.quality import (  # noqa: E402
    GOOD,
    QualityMonitor,
    QualityReport,
    channel_targets,
    nearest_neighbours,
)
from streaming.dsp.quality_config import load_quality_config  # noqa: E402
from streaming.pipeline.biofeedback import load_movement_levels  # noqa: E402

FS = 4096.0
CHUNK = 32
RESULTS = Path(__file__).resolve().parent / "results" / "quality_detection.json"
KINDS = ("flat", "railed", "spikes", "dropout", "hum", "bridge", "lifting")
# per kind: the fault's settings beyond channel and window (amplitudes a lab sees)
SETTINGS: dict[str, dict[str, float]] = {
    "spikes": {"rate_hz": 2.0},
    "dropout": {"rate_hz": 2.0},
    "hum": {"amplitude_uv": 60.0},
    "lifting": {"ramp_s": 6.0, "noise_uv": 50.0, "amplitude_uv": 100.0},
}
REASON = {
    "flat": "flat",
    "railed": "railed",
    "spikes": "motion",
    "dropout": "nan",
    "hum": "mains",
    "bridge": "bridged",
    "lifting": "noise",
}
MARGIN_S = 2.0


@dataclass
class Fault:
    kind: str
    channel: int
    start_s: float
    end_s: float
    partner: int = -1
    first_event_s: float | None = None  # intermittent kinds: first event seen in the signal
    last_event_s: float | None = None


def draw_faults(
    rng: np.random.Generator, n: int, minutes: float, labels: list[str], nbrs: dict
) -> list[Fault]:
    """``n`` faults of 10-30 s at random times after a 20 s lead-in, none overlapping another on
    the same channel (a bridge occupies its partner too) within 2 s."""
    busy: dict[int, list[tuple[float, float]]] = {c: [] for c in range(len(labels))}
    faults, total = [], minutes * 60.0
    kinds = KINDS
    tries = 0
    while len(faults) < n and tries < 100 * n:
        tries += 1
        kind = kinds[len(faults) % len(kinds)]
        dur = float(rng.uniform(10.0, 30.0))
        start = float(rng.uniform(20.0, total - dur - 5.0))
        ch = int(rng.integers(len(labels)))
        partner = labels.index(nbrs[labels[ch]][0]) if kind == "bridge" else -1
        span = (start - MARGIN_S - 1.0, start + dur + MARGIN_S + 1.0)
        used = [ch] + ([partner] if partner >= 0 else [])
        if any(a < span[1] and span[0] < b for c in used for a, b in busy[c]):
            continue
        for c in used:
            busy[c].append(span)
        faults.append(Fault(kind, ch, start, start + dur, partner))
    return sorted(faults, key=lambda f: f.start_s)


def note_events(x: np.ndarray, first: int, prev: np.ndarray, faults: list[Fault]) -> None:
    """First and last event times of the intermittent faults (NaN runs; spike jumps)."""
    for f in faults:
        if f.kind not in ("spikes", "dropout"):
            continue
        col = x[:, f.channel]
        if f.kind == "dropout":
            hits = np.flatnonzero(~np.isfinite(col))
        else:
            hits = np.flatnonzero(np.abs(np.diff(np.concatenate([[prev[f.channel]], col]))) > 100)
        hits = hits[((first + hits) / FS >= f.start_s) & ((first + hits) / FS < f.end_s)]
        if hits.size:
            t0, t1 = (first + hits[0]) / FS, (first + hits[-1]) / FS
            f.first_event_s = t0 if f.first_event_s is None else f.first_event_s
            f.last_event_s = t1


def session(minutes: float, n_faults: int, seed: int) -> dict:
    """Simulate, monitor and score one session."""
    cfg0 = SimulatorConfig(seed=seed, script=ScriptConfig(kind="protocol", loop=True))
    probe = EmgSimulator(cfg0)
    labels = probe.labels
    nbrs = nearest_neighbours(labels, probe.scheme.positions, k=4)
    rng = np.random.default_rng(seed)
    faults = draw_faults(rng, n_faults, minutes, labels, nbrs)
    sim_faults = [
        FaultConfig(
            channel=labels[f.channel],
            kind=f.kind,
            start_s=f.start_s,
            duration_s=f.end_s - f.start_s,
            partner=labels[f.partner] if f.partner >= 0 else None,
            **SETTINGS.get(f.kind, {}),
        )
        for f in faults
    ]
    sim = EmgSimulator(cfg0.model_copy(update={"faults": sim_faults}))
    for f, window in zip(faults, sim.fault_windows(), strict=True):  # score the simulator's own
        assert window.kind == f.kind and window.stop is not None
        f.start_s, f.end_s = window.start / FS, window.stop / FS
    targets = channel_targets(
        load_movement_levels(config_path("movements.toml")), sim.scheme.muscles
    )
    mon = QualityMonitor(
        labels, FS, load_quality_config(), neighbours=nbrs, channel_targets=targets
    )
    script_s = sim.script.duration_s
    marks = []
    for loop in range(int(minutes * 60 // script_s) + 1):
        for e in sim.script.events:
            marks += [
                (round((e.start_s + loop * script_s) * FS), e.movement),
                (round((e.end_s + loop * script_s) * FS), None),
            ]
    marks.sort(key=lambda m: m[0])
    n_total = round(minutes * 60 * FS)
    reports: list[QualityReport] = []
    prev = np.zeros(len(labels))
    t0 = time.perf_counter()
    cpu_monitor = 0.0
    for first in range(0, n_total, 4096):
        x = sim.generate(min(4096, n_total - first))[0].astype(np.float64)
        note_events(x, first, prev, faults)
        prev = x[-1].copy()
        c0 = time.process_time()
        for i in range(0, x.shape[0], CHUNK):
            while marks and marks[0][0] < first + i + CHUNK:
                at, movement = marks.pop(0)
                mon.set_movement(movement, at_sample=at)
            reports += mon.process_all(x[i : i + CHUNK])
        cpu_monitor += time.process_time() - c0
    wall = time.perf_counter() - t0
    return {
        "labels": labels,
        "faults": faults,
        "reports": reports,
        "wall_s": wall,
        "monitor_cpu_s": cpu_monitor,
    }


def score(labels: list[str], faults: list[Fault], reports: list[QualityReport]) -> dict:
    t = np.array([r.sample_index / FS for r in reports])
    states = np.array([r.states for r in reports])  # (reports, channels)
    per_fault = []
    for f in faults:
        reason = REASON[f.kind]
        flagged = np.array(
            [
                r.states[f.channel] != GOOD
                and any(x.startswith(reason) for x in r.reasons[f.channel])
                for r in reports
            ]
        )
        start = f.first_event_s if f.first_event_s is not None else f.start_s
        end = f.end_s
        if f.kind == "spikes" and f.last_event_s is not None:
            end = min(f.end_s, f.last_event_s + 0.25)  # the last spike's decay (5 x 50 ms)
        elif f.kind == "dropout" and f.last_event_s is not None:
            end = min(f.end_s, f.last_event_s + 1.0 / FS)
        hit = t[flagged & (t >= start)]
        detect = float(hit[0] - start) if hit.size else None
        good_after = t[(t >= end) & (states[:, f.channel] == GOOD)]
        later_bad = (t >= (good_after[0] if good_after.size else np.inf)) & (t < end + 10)
        clear = float(good_after[0] - end) if good_after.size else None
        held = flagged[(t >= (hit[0] if hit.size else np.inf)) & (t <= f.end_s)]
        per_fault.append(
            {
                "kind": f.kind,
                "channel": labels[f.channel],
                "partner": labels[f.partner] if f.partner >= 0 else None,
                "start_s": round(f.start_s, 2),
                "end_s": round(f.end_s, 2),
                "scored_from_s": round(start, 2),
                "scored_to_s": round(end, 2),
                "detection_delay_s": detect,
                "clear_delay_s": clear,
                "held_fraction": float(held.mean()) if held.size else 0.0,
                "reflagged_within_10s_after": bool(
                    (later_bad & (states[:, f.channel] != GOOD)).any()
                ),
            }
        )
    # false alarms on clean channel time
    clean = np.ones(states.shape, dtype=bool)
    for f in faults:
        for c in (f.channel, f.partner):
            if c >= 0:
                clean[(t >= f.start_s - MARGIN_S) & (t <= f.end_s + MARGIN_S), c] = False
    episodes = {}
    for level in ("check", "bad"):
        on = (states == level) | ((states == "bad") if level == "check" else False)
        starts = on & ~np.vstack([np.zeros((1, on.shape[1]), bool), on[:-1]]) & clean
        episodes[level] = int(starts.sum())
    clean_hours = clean.sum() * 0.5 / 3600.0
    not_good = ((states != GOOD) & clean).sum() * 0.5 / 3600.0
    return {
        "faults": per_fault,
        "clean_channel_hours": clean_hours,
        "false_check_episodes_per_channel_hour": episodes["check"] / clean_hours,
        "false_bad_episodes_per_channel_hour": episodes["bad"] / clean_hours,
        "clean_time_not_good_fraction": not_good / clean_hours,
    }


def cpu_cost(n_channels: int, seconds: float, repeats: int = 3) -> float:
    """CPU seconds per second of signal for the monitor alone, 32-sample chunks."""
    rng = np.random.default_rng(n_channels)
    x = 3.0 * rng.standard_normal((round(seconds * FS), n_channels))
    labels = [f"E{i}" for i in range(n_channels)]
    xy = rng.uniform(-1, 1, (n_channels, 2))
    best = np.inf
    for _ in range(repeats):
        mon = QualityMonitor(labels, FS, neighbours=nearest_neighbours(labels, xy, 4))
        c0 = time.process_time()
        for i in range(0, x.shape[0], CHUNK):
            mon.process(x[i : i + CHUNK])
        best = min(best, time.process_time() - c0)
    return best / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="simulated session length")
    parser.add_argument("--faults", type=int, default=24, help="faults in the session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=float, default=20.0, help="signal per CPU case")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cpu = pin_one_core()
    print(f"quality detection: {args.minutes:g} min simulated, {args.faults} faults, CPU {cpu}")
    run = session(args.minutes, args.faults, args.seed)
    scores = score(run["labels"], run["faults"], run["reports"])
    print(f"{'kind':8} {'channel':8} {'start':>7} {'end':>7} {'detect_s':>9} {'clear_s':>8} held")
    for f in scores["faults"]:
        d = "-" if f["detection_delay_s"] is None else f"{f['detection_delay_s']:.2f}"
        c = "-" if f["clear_delay_s"] is None else f"{f['clear_delay_s']:.2f}"
        print(
            f"{f['kind']:8} {f['channel']:8} {f['start_s']:7.1f} {f['end_s']:7.1f} "
            f"{d:>9} {c:>8} {f['held_fraction']:.2f}"
        )
    detect = [f["detection_delay_s"] for f in scores["faults"]]
    clear = [f["clear_delay_s"] for f in scores["faults"]]
    summary = {
        "faults": len(detect),
        "missed": sum(d is None for d in detect),
        "detection_delay_s_median": float(np.median([d for d in detect if d is not None])),
        "detection_delay_s_max": float(max(d for d in detect if d is not None)),
        "clear_delay_s_median": float(np.median([c for c in clear if c is not None])),
        "clear_delay_s_max": float(max(c for c in clear if c is not None)),
        "within_2s": sum(
            d is not None and c is not None and d <= 2.0 and c <= 2.0
            for d, c in zip(detect, clear, strict=True)
        ),
    }
    costs = {str(n): cpu_cost(n, args.cpu_seconds) for n in (22, 64)}
    signal_s = args.minutes * 60.0
    result = {
        "benchmark": "quality_detection",
        "minutes_simulated": args.minutes,
        "seed": args.seed,
        "session_wall_s": run["wall_s"],
        "session_monitor_cpu_s_per_signal_s": run["monitor_cpu_s"] / signal_s,
        "summary": summary,
        "false_alarms": {k: v for k, v in scores.items() if k != "faults"},
        "cpu_s_per_signal_s": costs,
        "pinned_cpu": cpu,
        "load_average_1min": os.getloadavg()[0],
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "faults": scores["faults"],
    }
    print(json.dumps({k: result[k] for k in ("summary", "false_alarms")}, indent=1))
    print(
        f"CPU per second of signal: 22 ch {costs['22'] * 1e3:.1f} ms, 64 ch "
        f"{costs['64'] * 1e3:.1f} ms; session {signal_s:.0f} s simulated in {run['wall_s']:.0f} s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
