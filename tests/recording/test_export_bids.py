"""``eifer export --to bids``: BIDS EMG through MNE-BIDS, read back with MNE-BIDS; what BIDS has
no place for is named, not dropped silently."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nodes.cli import main
from streaming.errors import SessionFileError
from streaming.recording.export_bids import export_bids

pytest.importorskip("mne_bids")
pytest.importorskip("edfio")


def test_emg_events_and_sidecars_read_back(session_dir: Path, tmp_path: Path) -> None:
    import mne_bids

    root = tmp_path / "bids"
    written, left_out = export_bids(session_dir, root, task="mimics", run=2)
    emg_file = root / "sub-P01/emg/sub-P01_task-mimics_run-2_emg.bdf"
    assert emg_file in written
    sidecar = json.loads(emg_file.with_name("sub-P01_task-mimics_run-2_emg.json").read_text())
    assert sidecar["SamplingFrequency"] == 512.0 and sidecar["PowerLineFrequency"] == 50.0
    assert sidecar["EMGChannelCount"] == 22 and sidecar["EMGPlacementScheme"] == "Other"
    assert sidecar["EMGPlacementSchemeDescription"].startswith("fridlund: Fridlund & Cacioppo")
    with emg_file.with_name("sub-P01_task-mimics_run-2_events.tsv").open() as f:
        events = list(csv.DictReader(f, delimiter="\t"))
    smile = [e for e in events if e["trial_type"] == "Smile-Open"]
    assert len(smile) == 1 and float(smile[0]["duration"]) == pytest.approx(1.0, abs=1e-3)
    raw = mne_bids.read_raw_bids(
        mne_bids.BIDSPath(subject="P01", task="mimics", run=2, datatype="emg", root=root),
        verbose="error",
    )
    # channel k holds (k + sample / 1000) microvolts; BDF's 24 bits keep that to 0.01 uV
    np.testing.assert_allclose(raw.get_data()[5, 100], (5 + 0.1) * 1e-6, atol=1e-8)
    assert left_out == ["Camera (video Camera.mkv: BIDS EMG defines no video)"]


def test_cli_prints_what_it_cannot_write_and_needs_a_task(
    session_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bids"
    assert main(["export", str(session_dir), "--to", "bids", "--out", str(root)]) == 1
    assert "BIDS needs a task label; give --task" in capsys.readouterr().err
    assert (
        main(["export", str(session_dir), "--to", "bids", "--out", str(root), "--task", "t"]) == 0
    )
    out = capsys.readouterr().out
    assert "sub-P01_task-t_emg.bdf" in out
    assert "not written to BIDS (kept in the session): Camera (video Camera.mkv" in out
    with pytest.raises(SessionFileError, match="exist"):  # a run is never overwritten silently
        export_bids(session_dir, root, task="t")
    # issue 18, item 11: the CLI names its own options, not mne-bids' "set overwrite to True"
    assert (
        main(["export", str(session_dir), "--to", "bids", "--out", str(root), "--task", "t"]) == 1
    )
    err = capsys.readouterr().err
    assert "--run N" in err and "--overwrite" in err and "set overwrite" not in err, err
    assert len(err.strip().splitlines()) == 1
