"""``eifer train report``: a run's evaluation as Markdown + PNG figures + JSON.

From ``predictions.npz`` and ``metrics.json`` of a run folder, writes ``report/report.md`` with:
the headline (held-out mean Pearson r of Exp2EMG over channels and of EMG2Exp over the driven
expression components), tables per fold, held-out participant and movement, r and RMSE per
channel and per expression component, and figures: r per channel / component, predicted vs
measured envelopes per movement of a held-out participant, and a face heatmap per movement
(measured vs predicted mean activity at the electrode sites of the Fridlund scheme, as the live
display draws it). ``report/report.json`` holds the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import RunError
from training.frames import REST

__all__ = ["write_report"]


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _plot_r(metrics: dict[str, Any], out: Path) -> str:
    import matplotlib.pyplot as plt

    channels = metrics["channels"]
    driven = metrics["driven_phi"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5))
    for name, fold in metrics["fold"].items():
        r = [np.nan if v is None else v for v in fold["exp2emg"]["r"]]
        axes[0].plot(range(len(channels)), r, "o", ms=4, label=name)
        rp = [
            np.nan if fold["emg2exp"]["r"][i] is None else fold["emg2exp"]["r"][i] for i in driven
        ]
        axes[1].plot(range(len(driven)), rp, "o", ms=4, label=name)
    axes[0].set_xticks(range(len(channels)), channels, fontsize=8)
    axes[0].set_ylabel("Pearson r")
    axes[0].set_title("Exp2EMG, held-out participants: r per EMG channel")
    axes[1].set_xticks(range(len(driven)), [f"phi{i}" for i in driven], fontsize=7, rotation=90)
    axes[1].set_ylabel("Pearson r")
    axes[1].set_title("EMG2Exp, held-out participants: r per driven expression component")
    for ax in axes:
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=6)
    fig.tight_layout()
    fig.savefig(out / "r_per_channel.png", dpi=110)
    plt.close(fig)
    return "r_per_channel.png"


def _plot_envelopes(preds: dict[str, np.ndarray], channels: list[str], out: Path) -> str:
    import matplotlib.pyplot as plt

    pid = str(preds["participant"][0])
    rows = preds["participant"] == pid
    movement, true, pred = preds["movement"][rows], preds["emg_true"][rows], preds["emg_pred"][rows]
    names = [m for m in dict.fromkeys(movement.tolist()) if m != REST]
    fig, axes = plt.subplots(
        max(1, len(names)), 1, figsize=(10, 1.7 * max(1, len(names))), squeeze=False
    )
    for ax, name in zip(axes[:, 0], names, strict=False):
        idx = np.flatnonzero(movement == name)
        breaks = np.flatnonzero(np.diff(idx) > 1)
        first_end = idx[breaks[0]] if len(breaks) else idx[-1]  # the first repetition
        lo, hi = max(0, idx[0] - 30), min(len(movement), first_end + 30)  # with 1 s of context
        top = np.argsort(true[idx].mean(axis=0))[::-1][:3]
        t = np.arange(lo, hi) / 30.0
        for c in top:
            line = ax.plot(t, true[lo:hi, c], lw=1.2, label=f"{channels[c]} measured")[0]
            ax.plot(
                t,
                pred[lo:hi, c],
                "--",
                lw=1.2,
                color=line.get_color(),
                label=f"{channels[c]} Exp2EMG",
            )
        ax.set_title(f"{name}", fontsize=9, loc="left")
        ax.set_ylabel("norm.")
        ax.legend(fontsize=6, ncol=6, loc="upper right")
    axes[-1, 0].set_xlabel(
        "time in the session (s, at 30 frames/s); first repetition of each movement"
    )
    fig.suptitle(
        f"Held-out participant {pid}: measured vs predicted envelopes per movement", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out / "envelopes_per_movement.png", dpi=110)
    plt.close(fig)
    return "envelopes_per_movement.png"


def _face_image(values: np.ndarray, positions: np.ndarray, size: int = 120) -> np.ndarray:
    """Gaussian splat of channel values at face positions over a frontal face ellipse."""
    xs = np.linspace(-1.0, 1.0, size)
    gx, gy = np.meshgrid(xs, xs[::-1])
    weights = np.exp(
        -((gx[..., None] - positions[:, 0]) ** 2 + (gy[..., None] - positions[:, 1]) ** 2)
        / (2 * 0.12**2)
    )
    image = (weights * values).sum(-1) / np.maximum(weights.sum(-1), 1e-6)
    image[(gx / 0.85) ** 2 + ((gy + 0.05) / 1.0) ** 2 > 1.0] = np.nan
    return image


def _plot_heatmaps(preds: dict[str, np.ndarray], channels: list[str], out: Path) -> str:
    import matplotlib.pyplot as plt

    from streaming.acquisition.electrodes import load_scheme

    scheme = load_scheme("fridlund")
    known = [c for c in channels if c in scheme.labels]
    pos = np.array([scheme.channel(c).position for c in known])
    cols = [channels.index(c) for c in known]
    names = sorted(set(preds["movement"].tolist()))
    fig, axes = plt.subplots(2, len(names), figsize=(1.9 * len(names), 4.4), squeeze=False)
    vmax = max(1e-6, float(np.nanmax(preds["emg_true"][:, cols])) * 0.6)
    for j, name in enumerate(names):
        rows = preds["movement"] == name
        for i, (key, label) in enumerate((("emg_true", "measured"), ("emg_pred", "Exp2EMG"))):
            mean = preds[key][rows][:, cols].mean(axis=0)
            ax = axes[i, j]
            ax.imshow(
                _face_image(mean, pos), extent=(-1, 1, -1, 1), cmap="magma", vmin=0, vmax=vmax
            )
            ax.plot(pos[:, 0], pos[:, 1], ".", color="cyan", ms=2)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(
        "Mean normalised activity per movement (held-out participants; viewer's view)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out / "face_heatmaps.png", dpi=110)
    plt.close(fig)
    return "face_heatmaps.png"


def _fmt_r(summary: dict[str, Any]) -> str:
    """Mean r, with the number of columns it leaves out (r undefined: a constant side)."""
    n = summary.get("n_undefined", 0)
    return _fmt(summary["mean_r"]) + (f" ({n} undefined)" if n else "")


def _table(title: str, group: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", "", "| | frames | Exp2EMG mean r | Exp2EMG RMSE | EMG2Exp mean r | EMG2Exp RMSE |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, m in group.items():
        x, e = m["exp2emg"], m["emg2exp"]
        lines.append(
            f"| {name} | {x['n_frames']} | {_fmt_r(x)} | {_fmt(x['mean_rmse'])} | "
            f"{_fmt_r(e)} | {_fmt(e['mean_rmse'])} |"
        )
    return [*lines, ""]


def write_report(run: str | Path) -> Path:
    """Write ``<run>/report/`` from the run's predictions and metrics; returns report.md."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(run)
    for name in ("predictions.npz", "metrics.json"):
        if not (folder / name).is_file():
            raise RunError(f"{folder / name}: missing; the run has not finished its folds")
    metrics = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "predictions.npz", allow_pickle=False) as data:
        preds = {k: data[k] for k in data.files}
    out = folder / "report"
    out.mkdir(exist_ok=True)
    channels = metrics["channels"]
    figures = [
        _plot_r(metrics, out),
        _plot_envelopes(preds, channels, out),
        _plot_heatmaps(preds, channels, out),
    ]
    head = metrics["headline"]
    run_info = metrics.get("run", {})
    lines = [
        f"# Phase-2 evaluation: {folder.name}",
        "",
        f"Git commit `{run_info.get('git_commit', '?')}`; folds (held-out participants): "
        f"{run_info.get('folds', {})}.",
        "",
        f"- **Exp2EMG** (phi -> EMG), held-out mean Pearson r over channels: "
        f"**{_fmt(head['exp2emg_mean_r_held_out'])}** (per fold: "
        f"{', '.join(_fmt(v) for v in head['exp2emg_mean_r_per_fold'])})",
        f"- **EMG2Exp** (EMG -> phi), held-out mean Pearson r over the {len(metrics['driven_phi'])} "
        f"driven expression components: **{_fmt(head['emg2exp_mean_r_held_out'])}** (per fold: "
        f"{', '.join(_fmt(v) for v in head['emg2exp_mean_r_per_fold'])})",
        *(
            [
                f"- **Exp2EMG** against the simulator's true activation under each channel: mean r "
                f"**{_fmt(head['exp2emg_mean_r_vs_true_activation'])}**"
            ]
            if head.get("exp2emg_mean_r_vs_true_activation") is not None
            else []
        ),
        "",
        "EMG targets are the participant-normalised envelopes of the training set's EMG feature; "
        "phi targets the truth stream / parameter files (or the encoders). r is computed over the "
        "held-out frames pooled, per column, then averaged.",
        "",
        *_table("Per fold", metrics["fold"]),
        *_table("Per held-out participant", metrics["participant"]),
        *_table("Per movement", metrics["movement"]),
        "### Per channel (all held-out frames)",
        "",
        "| channel | r | RMSE |",
        "| --- | --- | --- |",
    ]
    overall = metrics["all"]["all"]
    for c, name in enumerate(channels):
        lines.append(
            f"| {name} | {_fmt(overall['exp2emg']['r'][c])} | {_fmt(overall['exp2emg']['rmse'][c])} |"
        )
    lines += [
        "",
        "### Per driven expression component",
        "",
        "| phi | r | RMSE |",
        "| --- | --- | --- |",
    ]
    for i in metrics["driven_phi"]:
        lines.append(
            f"| {i} | {_fmt(overall['emg2exp']['r'][i])} | {_fmt(overall['emg2exp']['rmse'][i])} |"
        )
    lines += ["", "## Figures", ""] + [f"![{f}]({f})\n" for f in figures]
    (out / "report.json").write_text(json.dumps(metrics, indent=2))
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
