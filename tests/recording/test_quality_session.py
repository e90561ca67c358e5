"""The electrode-quality timeline in a recorded session and its exports (issue 21 items 4-5).

Live: the EMG simulator node (F3 flat throughout, F7 flat for 4 s from 7 s) -> the pipeline (its
``<EMG>-quality`` LSL stream) -> the recorder: ``session.json`` has the summary, the XDF the
stream (pyxdf), the MNE export ``info["bads"]`` and ``BAD_flat`` annotations on the channels.
Offline: a hand-written XDF with a quality stream of real monitor reports exports the same way.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from streaming.dsp.quality import QualityMonitor
from streaming.dsp.quality_codes import STREAM_TYPE, encode_report, stream_channels, stream_desc
from streaming.recording.export import emg_to_raw, export_session
from streaming.recording.quality_timeline import bad_stretches, stream_timeline, summarise
from streaming.recording.session_reader import load_recording
from tests.emg.simulator_node import simulator_node

FS = 4096.0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_recorded_session_keeps_the_quality_timeline_and_exports_it(unique_name, tmp_path):
    import mne
    import pyxdf

    from streaming.acquisition.lsl_io import StreamSelector, desc_to_dict, find_stream
    from streaming.bus.pubsub import Publisher
    from streaming.config import validate
    from streaming.pipeline.pipeline import Pipeline, PipelineConfig
    from streaming.recording.recorder import Recorder, RecorderConfig

    name = unique_name
    faults = '{channel="F3", kind="flat"}, {channel="F7", kind="flat", start_s=7.0, duration_s=4.0}'
    with simulator_node(name, faults):
        publisher = Publisher("tcp://127.0.0.1:*")
        pipeline = Pipeline(
            validate(
                PipelineConfig,
                {
                    "emg": {"name": name, "type": "EMG", "reconnect_timeout_s": 1.0},
                    "video": {"enabled": False},
                    "output": {"lsl_predictions": False},
                },
            ),
            publisher=publisher,
        )
        thread = threading.Thread(target=pipeline.run, daemon=True)
        try:
            truth = desc_to_dict(find_stream(StreamSelector(name=f"{name}-truth"), timeout_s=30))
            t0_lsl = float(truth["t0_lsl"])
            thread.start()
            find_stream(StreamSelector(name=f"{name}-quality"), timeout_s=30)
            config = RecorderConfig(
                root=str(tmp_path), session="q1",
                streams=[{"name": name}, {"name": f"{name}-quality"}],
            )  # fmt: skip
            recorder = Recorder(config)
            import pylsl

            while pylsl.local_clock() < t0_lsl + 14.0:  # past the F7 stretch's end (11 s) + 2 s
                recorder.poll()
                time.sleep(0.1)
            recorder.close()
        finally:
            pipeline.stop()
            thread.join(10)
            publisher.close()
    folder = recorder.folder

    # session.json: per channel seconds in each state, reasons, bad stretches
    info = json.loads((folder / "session.json").read_text())
    summary = info["quality"][f"{name}-quality"]
    assert summary["of_stream"] == name and summary["update_s"] == 0.5
    channels = summary["channels"]
    assert set(channels) == {f"F{i}" for i in range(1, 23)}
    f3, f7 = channels["F3"], channels["F7"]
    assert f3["good_s"] == 0 and f3["bad_s"] == summary["seconds"] and "flat" in f3["reasons"]
    assert len(f3["bad_stretches"]) == 1
    (stretch,) = f7["bad_stretches"]
    # a lead going flat mid-window first repeats its last value ("stuck"), then reads flat; the
    # step into and out of the stretch is a sub-20 Hz transient, which may read as "motion" in
    # the window that holds it (seen in a fresh clone's slow tier; it depends on where the 0.5 s
    # blocks fall)
    assert "flat" in stretch["reasons"] and set(stretch["reasons"]) <= {"flat", "stuck", "motion"}
    assert abs(stretch["start_lsl"] - (t0_lsl + 7.0)) <= 2.0, stretch
    assert abs(stretch["duration_s"] - 4.0) <= 2.0, stretch
    assert all(c["bad_s"] == 0 for label, c in channels.items() if label not in ("F3", "F7"))

    # the XDF: the quality stream beside the EMG, as pyxdf reads it
    streams, _ = pyxdf.load_xdf(str(folder / "session.xdf"))
    by_name = {s["info"]["name"][0]: s for s in streams}
    quality = by_name[f"{name}-quality"]
    assert quality["info"]["type"][0] == STREAM_TYPE
    labels = [c["label"][0] for c in quality["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels == stream_channels([f"F{i}" for i in range(1, 23)])
    states_f7 = quality["time_series"][:, labels.index("F7")]
    stamps = quality["time_stamps"]
    assert set(states_f7[(stamps > t0_lsl + 9.0) & (stamps < t0_lsl + 11.0)]) == {2.0}
    assert set(states_f7[(stamps > t0_lsl + 2.0) & (stamps < t0_lsl + 7.0)]) == {0.0}
    assert set(states_f7[stamps > t0_lsl + 13.0]) == {0.0}

    # the MNE export: F3 bad throughout, a BAD_flat annotation on F7 at the stretch
    (fif,) = export_session(folder, "mne", tmp_path / "export", emg=name)
    raw = mne.io.read_raw_fif(fif, verbose="error")
    assert raw.info["bads"] == ["F3"]
    ann = raw.annotations
    on_f7 = [i for i, ch in enumerate(ann.ch_names) if tuple(ch) == ("F7",)]
    assert sorted(ann.description[i] for i in on_f7) == sorted(
        f"BAD_{r}" for r in stretch["reasons"]
    )
    first_emg = float(by_name[name]["time_stamps"][0])
    for i in on_f7:  # one annotation per reason, each over the whole stretch
        assert ann.onset[i] == pytest.approx(stretch["start_lsl"] - first_emg, abs=0.01)
        assert ann.duration[i] == pytest.approx(stretch["duration_s"], abs=0.01)


def _monitor_reports(seconds: float) -> tuple[list[str], list]:
    """Real monitor reports of 4 channels: C flat from 2 s to 4 s, D flat throughout."""
    rng = np.random.default_rng(3)
    labels = ["A", "B", "C", "D"]
    x = 3.0 * rng.standard_normal((round(seconds * FS), 4))
    x[round(2 * FS) : round(4 * FS), 2] = 0.0
    x[:, 3] = 0.0
    reports = QualityMonitor(labels, FS).process_all(x, t_lsl_end=1000.0 + seconds - 1 / FS)
    return labels, reports


def test_a_quality_stream_in_any_xdf_exports_as_bads_and_bad_annotations(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    labels, reports = _monitor_reports(6.0)
    n = round(6.0 * 512)
    emg = xdf_tools.Stream(
        "EMG", "EMG", "float32", 512.0, 1000.0 + np.arange(n) / 512.0,
        np.zeros((n, 4), np.float32), 4, labels, "microvolts",
    )  # fmt: skip
    quality = xdf_tools.Stream(
        "EMG-quality", STREAM_TYPE, "float32", 0.0,
        np.array([r.t_lsl for r in reports]), np.stack([encode_report(r) for r in reports]),
        12, stream_channels(labels), desc=stream_desc("EMG", labels, 0.5),
    )  # fmt: skip
    path = xdf_tools.write(tmp_path / "s.xdf", [emg, quality])
    recording = load_recording(path)
    timeline = stream_timeline(recording.stream("EMG-quality"))
    assert [s.channel for s in bad_stretches(timeline)] == ["D", "C"]
    summary = summarise(timeline, "EMG-quality")
    (c_bad,) = summary["channels"]["C"]["bad_stretches"]
    assert c_bad["reasons"] == ["flat"] and c_bad["start_s"] == pytest.approx(2.0, abs=0.51)
    assert c_bad["duration_s"] == pytest.approx(2.0, abs=1.0)
    assert summary["channels"]["A"]["good_s"] == summary["seconds"] == 6.0
    raw = emg_to_raw(recording)
    assert raw.info["bads"] == ["D"]
    ann = raw.annotations
    rows = sorted(
        (tuple(ch), d, round(o, 3), round(du, 3))
        for ch, d, o, du in zip(ann.ch_names, ann.description, ann.onset, ann.duration, strict=True)
    )
    assert rows[0][:2] == (("C",), "BAD_flat") and rows[1][:2] == (("D",), "BAD_flat")
    assert rows[0][2] == pytest.approx(c_bad["start_lsl"] - 1000.0, abs=1e-3)
    assert rows[1][2:] == (0.0, round((n - 1) / 512.0, 3))  # clipped to the EMG's span


def test_a_session_without_a_quality_stream_exports_as_before(session_dir: Path) -> None:
    raw = emg_to_raw(load_recording(session_dir))
    assert raw.info["bads"] == [] and not any(
        d.startswith("BAD_") for d in raw.annotations.description
    )
