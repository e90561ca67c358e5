"""Session export: MNE Raw with annotations (FIF), NPZ and CSV per stream."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nodes.cli import main
from streaming.errors import SessionFileError
from streaming.recording.export import emg_to_raw, export_session, marker_annotations
from streaming.recording.session_reader import load_recording


def test_emg_becomes_mne_raw_in_volts_with_marker_annotations(session_dir: Path) -> None:
    raw = emg_to_raw(load_recording(session_dir))
    assert raw.ch_names == [f"F{i + 1}" for i in range(22)]
    assert set(raw.get_channel_types()) == {"emg"}
    assert raw.info["sfreq"] == 512.0 and raw.n_times == 3 * 512
    # channel k holds (k + sample / 1000) microvolts; MNE keeps volts
    np.testing.assert_allclose(raw.get_data()[5, 100], (5 + 0.1) * 1e-6, rtol=1e-6)
    ann = raw.annotations
    smile = [i for i, d in enumerate(ann.description) if d == "Smile-Open"]
    assert len(smile) == 1
    assert ann.onset[smile[0]] == pytest.approx(1.0, abs=1e-6)  # marker 1001.0, EMG from 1000.0
    assert ann.duration[smile[0]] == pytest.approx(1.0, abs=1e-6)
    assert ann.extras[smile[0]]["repetition"] == 1
    assert {"protocol:start", "protocol:end"} <= set(ann.description)
    assert raw.info["subject_info"]["his_id"] == "P01"  # from session.json


def test_fif_file_round_trips_through_mne(session_dir: Path, tmp_path: Path) -> None:
    import mne

    (fif,) = export_session(session_dir, "mne", tmp_path / "out")
    raw = mne.io.read_raw_fif(fif, preload=True, verbose="error")
    assert raw.ch_names[0] == "F1" and raw.info["sfreq"] == 512.0
    assert "Smile-Open" in raw.annotations.description
    epochs_source = raw.annotations[raw.annotations.description == "Smile-Open"]
    assert epochs_source.duration[0] == pytest.approx(1.0, abs=1e-3)


def test_meas_date_comes_from_the_xdf_file_header(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    path = xdf_tools.write(
        tmp_path / "s.xdf", [xdf_tools.emg(0.5)], datetime="2026-03-01T10:20:30+01:00"
    )
    raw = emg_to_raw(load_recording(path))
    assert raw.info["meas_date"] == dt.datetime(2026, 3, 1, 9, 20, 30, tzinfo=dt.UTC)


def test_start_without_stop_is_annotated_to_the_end() -> None:
    onsets, durations, descriptions, extras = marker_annotations(
        np.array([10.0, 11.0, 12.0]), ["start:Snarl:1", "stop:Snarl:1", "start:Snarl:2"], 9.0, 8.0
    )
    assert descriptions == ["Snarl", "Snarl"]
    assert onsets == [1.0, 3.0] and durations == [1.0, 5.0]
    assert extras[1]["unterminated"] is True


def test_npz_per_stream_loads_without_pickle(session_dir: Path, tmp_path: Path) -> None:
    paths = export_session(session_dir, "npz", tmp_path / "npz")
    assert sorted(p.name for p in paths) == ["Camera.npz", "EMG.npz", "Markers.npz"]
    emg = np.load(tmp_path / "npz" / "EMG.npz", allow_pickle=False)
    assert emg["data"].shape == (3 * 512, 22) and emg["data"].dtype == np.float32
    assert list(emg["labels"][:2]) == ["F1", "F2"] and str(emg["units"][0]) == "microvolts"
    np.testing.assert_allclose(np.diff(emg["timestamps"]), 1 / 512.0)
    markers = np.load(tmp_path / "npz" / "Markers.npz", allow_pickle=False)
    assert list(markers["data"][:, 0])[1] == "start:Smile-Open:1"


def test_csv_per_stream_reads_back(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "xdf" / "minimal.xdf"
    export_session(path, "csv", tmp_path / "csv")
    rec = load_recording(path)
    with (tmp_path / "csv" / "SendDataC.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "ch1", "ch2", "ch3"] and len(rows) == 10
    np.testing.assert_array_equal(
        np.array(rows[1:], dtype=float)[:, 1:], rec.stream("SendDataC").data
    )
    with (tmp_path / "csv" / "SendDataString.csv").open(newline="") as fh:
        strings = list(csv.reader(fh))
    assert [r[1] for r in strings[1:]] == [r[0] for r in rec.stream("SendDataString").data]


def test_cli_exports_and_lists_the_files(
    session_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    assert main(["export", str(session_dir), "--to", "npz", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["Camera.npz", "EMG.npz", "Markers.npz"]


def test_mne_export_without_emg_stream_names_what_is_there(shared_data: Path) -> None:
    with pytest.raises(SessionFileError, match=r"no EMG stream.*SendDataC"):
        export_session(shared_data / "xdf" / "minimal.xdf", "mne")


@pytest.mark.parametrize("to", ["npz", "csv", "mne", "bids"])
@pytest.mark.parametrize("streams", ["none", "empty"])
def test_every_exporter_refuses_an_empty_session_alike(
    to: str, streams: str, xdf_tools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18, item 5: an empty recording is one named error for every format, no files."""
    if to == "bids":
        pytest.importorskip("mne_bids")
    session = tmp_path / "session"
    session.mkdir()
    content = [] if streams == "none" else [xdf_tools.emg(0.0), xdf_tools.markers([])]
    xdf_tools.write(session / "session.xdf", content)
    out = tmp_path / "out"
    argv = ["export", str(session), "--to", to, "--out", str(out), "--task", "t"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "nothing to export" in err and "(an empty recording)" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not [p for p in out.rglob("*") if p.is_file()]
