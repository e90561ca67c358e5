"""Figures of an :class:`~streaming.check.collect.Observation`, judged against the thresholds,
as one table (text or JSON)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from streaming.bus.pubsub import Message
from streaming.check.alignment import alignment_errors_ms
from streaming.check.collect import Observation
from streaming.check.config import Thresholds
from streaming.check.quality_rows import quality_rows
from streaming.check.rows import Row, judge
from streaming.pipeline.video_feed import FrameCounter

__all__ = ["Row", "as_json", "evaluate", "format_table", "mean_correlation", "passed"]

UNTRAINED = {  # the note of a correlation reported, not judged
    "encoders": "encoders untrained: reported, not judged",
    "mlps": "MLPs untrained: reported, not judged",
}
MATCH_S = 0.5e-3  # a message's t and its frame's capture stamp are the same number


def mean_correlation(predicted: np.ndarray, true: np.ndarray) -> float | None:
    """Mean Pearson r over the columns where the truth varies; a prediction that stays constant
    there counts as r 0, not as missing (a dead output must lower the mean, not leave it).
    None: no such column, or fewer than 3 rows."""
    ok = np.all(np.isfinite(predicted), axis=1) & np.all(np.isfinite(true), axis=1)
    predicted, true = predicted[ok], true[ok]
    if len(true) < 3:
        return None
    p, t = predicted - predicted.mean(0), true - true.mean(0)
    sp, st = np.sqrt((p**2).sum(0)), np.sqrt((t**2).sum(0))
    moving = st > 1e-6 * max(1.0, float(np.abs(true).max()))
    if not moving.any():
        return None
    p, t, sp, st = p[:, moving], t[:, moving], sp[moving], st[moving]
    alive = sp > 0
    r = np.zeros(len(st))
    r[alive] = (p * t).sum(0)[alive] / (sp[alive] * st[alive])
    return float(np.mean(r))


def _in_window(obs: Observation, messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.t is not None and obs.t_start <= m.t <= obs.t_end]


def _matched(capture_t: np.ndarray, message_t: np.ndarray) -> int:
    """Captured frames that have a message with their stamp."""
    if len(capture_t) == 0 or len(message_t) == 0:
        return 0
    message_t = np.sort(message_t)
    i = np.clip(np.searchsorted(message_t, capture_t), 1, len(message_t) - 1)
    nearest = np.minimum(
        np.abs(message_t[i] - capture_t), np.abs(message_t[np.maximum(i - 1, 0)] - capture_t)
    )
    if len(message_t) == 1:
        nearest = np.abs(message_t[0] - capture_t)
    return int(np.sum(nearest <= MATCH_S))


def _frame_rows(obs: Observation, muscle: list[Message], limits: Thresholds) -> list[Row]:
    rows: list[Row] = []
    message_t = np.array([m.t for m in muscle])
    if obs.capture_t is None:
        rows.append(
            Row("frames captured", None, "", "", False, "no camera stream: " + "; ".join(obs.notes))
        )
        return rows
    captured = len(obs.capture_t)
    published = _matched(obs.capture_t, message_t)
    rows.append(Row("frames captured", captured, "frames"))
    rows.append(Row("frames published (of captured)", published, "frames"))
    rows.append(
        judge(
            "published / captured",
            published / captured if captured else None,
            "",
            ">=",
            limits.min_published_fraction,
        )
    )
    counter = FrameCounter(obs.camera_rate_hz)
    for t in obs.capture_t:
        counter.accept(float(t))
    rows.append(Row("dropped by the camera (stamp gaps)", counter.dropped, "frames"))
    frames = [m.frame for m in muscle]
    duplicated = (len(frames) - len(set(frames))) + (len(message_t) - len(np.unique(message_t)))
    rows.append(
        judge(
            "duplicated frames published", duplicated, "frames", "<=", limits.max_duplicated_frames
        )
    )
    return rows


def _status_rows(obs: Observation) -> list[Row]:
    statuses = _in_window(obs, obs.topic("status"))
    if len(statuses) < 1:
        return [Row("pipeline status", None, "", "", None, "no status message in the window")]
    first, last = statuses[0].fields.get("frames", {}), statuses[-1].fields.get("frames", {})
    rows = []
    for key, label in (
        ("skipped", "skipped by the pipeline"),
        ("dropped", "dropped (pipeline's count)"),
        ("duplicates", "duplicates (pipeline's count)"),
    ):
        if key in last and last[key] is not None:
            before = first.get(key) or 0 if len(statuses) > 1 else 0
            rows.append(Row(f"{label}, in the window", last[key] - before, "frames"))
    for stage, stats in sorted((statuses[-1].fields.get("latency_ms") or {}).items()):
        rows.append(
            Row(
                f"latency {stage} p50 / p99",
                stats.get("p50"),
                "ms",
                "",
                None,
                f"p99 {stats.get('p99', math.nan):.1f} ms",
            )
        )
    return rows


def _alignment_rows(obs: Observation, muscle: list[Message], limits: Thresholds) -> list[Row]:
    with_emg = [m for m in muscle if not m.fields.get("emg_missing")]
    aligns = sorted({str(m.fields.get("align", "?")) for m in muscle})
    note = f"align {', '.join(aligns) or '-'}"
    if obs.emg_truth is not None:
        truth_t, truth_k = obs.emg_truth.column("sample_index")
        errors = np.abs(alignment_errors_ms(with_emg, truth_t, truth_k))
        errors = errors[np.isfinite(errors)]
        p99 = float(np.percentile(errors, 99)) if len(errors) else None
        return [
            judge(
                "EMG-to-frame alignment error |p99| (vs truth)",
                p99,
                "ms",
                "<=",
                limits.max_alignment_error_ms,
                f"{note}; n {len(errors)}"
                + (f", max {errors.max():.3f} ms" if len(errors) else ""),
            )
        ]
    if len(obs.clock_offsets_s) >= 2:
        spread = 1e3 * float(np.ptp(obs.clock_offsets_s))
        return [
            judge(
                "EMG clock-offset spread (estimate, no truth)",
                spread,
                "ms",
                "<=",
                limits.max_alignment_error_ms,
                f"{note}; offset {1e3 * float(np.median(obs.clock_offsets_s)):.3f} ms",
            )
        ]
    return [Row("EMG-to-frame alignment", None, "ms", "", None, "no EMG stream to judge")]


def _latency_rows(obs: Observation, limits: Thresholds) -> list[Row]:
    pairs = [
        (r - m.t)
        for m, r in zip(obs.messages, obs.received_at, strict=True)
        if m.topic == "muscle" and m.t is not None and obs.t_start <= m.t <= obs.t_end
    ]
    if not pairs:
        return [Row("capture -> received here p99", None, "ms", "", None, "no muscle message")]
    ms = 1e3 * np.asarray(pairs)
    return [
        judge(
            "capture -> received here p99",
            float(np.percentile(ms, 99)),
            "ms",
            "<=",
            limits.max_capture_to_publish_p99_ms,
            f"p50 {np.percentile(ms, 50):.1f} ms",
        )
    ]


def _truth_at(truth_t: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the truth row stamped ``t`` (-1 where none is within ``MATCH_S``)."""
    if len(truth_t) == 0:
        return np.full(len(t), -1)
    i = np.clip(np.searchsorted(truth_t, t), 0, len(truth_t) - 1)
    j = np.clip(i - 1, 0, len(truth_t) - 1)
    best = np.where(np.abs(truth_t[i] - t) <= np.abs(truth_t[j] - t), i, j)
    return np.where(np.abs(truth_t[best] - t) <= MATCH_S, best, -1)


def _too_short(messages: list[Message], limits: Thresholds) -> str | None:
    """Why a video correlation is not judged over these frames (None: it is): r over a window
    that covers one or two movements says little (Thresholds' docstring)."""
    stamps = [m.t for m in messages if m.t is not None]
    span_s = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    if span_s >= limits.min_video_r_window_s:
        return None
    return f"not judged: {span_s:.0f} s of frames, judged over >= {limits.min_video_r_window_s:g} s"


def _correlation_rows(obs: Observation, muscle: list[Message], limits: Thresholds) -> list[Row]:
    rows: list[Row] = []
    modelled = [m for m in muscle if "emg_from_video" in m.fields and not m.fields["emg_missing"]]
    if modelled:
        r = mean_correlation(
            np.array([m.fields["emg_from_video"] for m in modelled]),
            np.array([m.fields["emg_measured"] for m in modelled]),
        )
        check = "r emg_from_video vs measured envelope"
        if not (limits.judge_video_models and limits.judge_emg_models):  # encoders + Exp2EMG
            which = "encoders" if not limits.judge_video_models else "mlps"
            rows.append(Row(check, r, "", "", None, UNTRAINED[which]))
        elif (short := _too_short(modelled, limits)) is not None:
            rows.append(Row(check, r, "", "", None, short))
        elif obs.emg_truth is not None or obs.video_truth is not None:
            rows.append(judge(check, r, "", ">=", limits.min_r_emg_from_video,
                               "aligned envelope, mean over channels"))  # fmt: skip
        else:
            rows.append(Row(check, r, "", "", None, "no truth: reported"))
    expression = _in_window(obs, obs.topic("expression"))
    if obs.video_truth is None or not expression:
        return rows
    truth_t, truth_rows = obs.video_truth.table()
    labels = obs.video_truth.labels
    phi_cols = [i for i, label in enumerate(labels) if label.startswith("phi_")]
    at = _truth_at(truth_t, np.array([m.t for m in expression]))
    pairs = [(m, truth_rows[k, phi_cols]) for m, k in zip(expression, at, strict=True) if k >= 0]
    if not pairs:
        rows.append(Row("phi vs true phi", None, "", "", None, "no frame matched the truth"))
        return rows
    true_phi = np.array([p for _, p in pairs])
    judged = {"phi_video": limits.judge_video_models, "phi_emg": limits.judge_emg_models}
    for key, limit in (("phi_video", limits.min_r_phi_video), ("phi_emg", limits.min_r_phi_emg)):
        predicted = np.array([m.fields.get(key, np.full(len(phi_cols), np.nan)) for m, _ in pairs])
        if predicted.shape != true_phi.shape:
            rows.append(Row(f"r {key} vs true phi", None, "", "", None, "sizes differ"))
            continue
        r = mean_correlation(predicted, true_phi)
        note = f"mean over moving components, {len(pairs)} frames"
        short = _too_short([m for m, _ in pairs], limits) if key == "phi_video" else None
        if judged[key] and short is not None:
            rows.append(Row(f"r {key} vs true phi", r, "", "", None, f"{short}; {note}"))
        elif judged[key]:
            rows.append(judge(f"r {key} vs true phi", r, "", ">=", limit, note))
        else:
            model = "encoders" if key == "phi_video" else "mlps"
            rows.append(Row(f"r {key} vs true phi", r, "", "", None, f"{UNTRAINED[model]}; {note}"))
    return rows


def evaluate(obs: Observation, limits: Thresholds) -> list[Row]:
    """Every figure of the table, judged where a threshold applies."""
    muscle = _in_window(obs, obs.topic("muscle"))
    rows = _frame_rows(obs, muscle, limits)
    if muscle:
        missing = sum(bool(m.fields.get("emg_missing")) for m in muscle) / len(muscle)
        rows.append(
            judge("frames with EMG missing", missing, "", "<=", limits.max_emg_missing_fraction)
        )
    rows += _alignment_rows(obs, muscle, limits)
    rows += _latency_rows(obs, limits)
    rows += _status_rows(obs)
    rows += _correlation_rows(obs, muscle, limits)
    rows += quality_rows(obs, limits)
    if obs.rejected:
        rows.append(Row("bus messages rejected", obs.rejected, "messages"))
    if obs.disconnects:
        rows.append(Row("bus connections dropped (messages lost)", obs.disconnects, "times"))
    return rows


def passed(rows: list[Row]) -> bool:
    return all(row.passed is not False for row in rows)


def as_json(rows: list[Row], obs: Observation) -> dict[str, Any]:
    return {
        "passed": passed(rows),
        "window_s": obs.t_end - obs.t_start,
        "emg_truth": obs.emg_truth is not None,
        "video_truth": obs.video_truth is not None,
        "notes": obs.notes,
        "rows": [asdict(row) for row in rows],
    }


def _shown(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def format_table(rows: list[Row]) -> str:
    """One plain-text table: check, value, threshold, verdict, note."""
    verdict = {True: "ok", False: "FAIL", None: ""}
    table = [("check", "value", "threshold", "result", "note")]
    table += [
        (r.check, f"{_shown(r.value)} {r.unit}".strip(), r.threshold, verdict[r.passed], r.note)
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line[:4], widths, strict=True)) + "  " + line[4]
        for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"overall: {'PASS' if passed(rows) else 'FAIL'}")
    return "\n".join(line.rstrip() for line in lines)
