"""LabRecorder's file naming: BIDS template, optional parts, next free run, ``_oldN``."""

from __future__ import annotations

from pathlib import Path

import pytest

from streaming.errors import SessionFileError
from streaming.recording.names import (
    BIDS_TEMPLATE,
    FileNameFields,
    expand_template,
    next_free_run,
    templated_paths,
)


def test_bids_template_as_labrecorder_writes_it() -> None:
    fields = FileNameFields(template="bids", participant="P01", session="S02", task="smile")
    assert expand_template(BIDS_TEMPLATE, fields, 3) == (
        "sub-P01/ses-S02/emg/sub-P01_ses-S02_task-smile_run-003_emg.xdf"
    )
    with_acq = fields.model_copy(update={"acquisition": "fridlund"})
    assert expand_template(BIDS_TEMPLATE, with_acq, 1) == (
        "sub-P01/ses-S02/emg/sub-P01_ses-S02_task-smile_acq-fridlund_run-001_emg.xdf"
    )


def test_bids_defaults_for_empty_labels() -> None:
    """LabRecorder fills P001 / S001 / Default when the BIDS fields are empty."""
    path = expand_template(BIDS_TEMPLATE, FileNameFields(template="bids"), 1)
    assert path == "sub-P001/ses-S001/emg/sub-P001_ses-S001_task-Default_run-001_emg.xdf"


def test_legacy_template_needs_its_fields() -> None:
    fields = FileNameFields(template="exp%n/block_%b.xdf")
    with pytest.raises(SessionFileError, match="task"):
        expand_template(fields.template, fields, 1)
    done = expand_template(fields.template, fields.model_copy(update={"task": "T1"}), 7)
    assert done == "exp007/block_T1.xdf"


@pytest.mark.parametrize("bad", ["../up", "a/b", ".."])
def test_labels_cannot_leave_the_root(bad: str) -> None:
    with pytest.raises(ValueError, match="participant"):  # refused when given
        FileNameFields(template="bids", participant=bad)
    fields = FileNameFields.model_construct(template="bids", participant=bad)  # unchecked
    with pytest.raises(SessionFileError, match="participant"):
        expand_template(BIDS_TEMPLATE, fields, 1)


@pytest.mark.parametrize(
    "template", ["../../esc/x_%p_%r.xdf", "a/../../x%p", "..\\x%p", "/abs/x%p", "sub-%p/.."]
)
def test_templates_cannot_leave_the_root(template: str, tmp_path: Path) -> None:
    """Issue 18, item 3: refused when given, and (unchecked) never written outside the root."""
    from streaming.config import ConfigError, load_config
    from streaming.recording.recorder import RecorderConfig

    with pytest.raises(ValueError, match="below the root"):
        FileNameFields(template=template, participant="P01")
    with pytest.raises(ConfigError, match="below the root"):  # a config or session file's --set
        load_config(RecorderConfig, None, [f"path_template={template!r}".replace("'", '"')])
    fields = FileNameFields.model_construct(template=template, participant="P01", run=1)
    root = tmp_path / "a" / "b" / "study"
    with pytest.raises(SessionFileError):
        templated_paths(root, fields)
    assert [p.name for p in tmp_path.rglob("*")] == []


def test_next_free_run_and_old_files_kept(tmp_path: Path) -> None:
    fields = FileNameFields(template="bids", participant="P01", session="S1", task="t")
    first = templated_paths(tmp_path, fields)
    assert first.xdf.name.endswith("_run-001_emg.xdf")
    first.xdf.write_bytes(b"first")
    assert next_free_run(tmp_path, BIDS_TEMPLATE, fields) == 2
    assert templated_paths(tmp_path, fields).xdf.name.endswith("_run-002_emg.xdf")
    # an explicit run whose file exists: the old file is renamed, never overwritten
    again = templated_paths(tmp_path, fields.model_copy(update={"run": 1}))
    assert again.xdf == first.xdf and not first.xdf.exists()
    old = first.xdf.with_name(first.xdf.name.replace(".xdf", "_old1.xdf"))
    assert old.read_bytes() == b"first"


def test_video_files_never_reuse_a_name(tmp_path: Path) -> None:
    paths = templated_paths(tmp_path, FileNameFields(template="bids", participant="P01"))
    taken = paths.video("Camera 1")
    assert taken.name == paths.xdf.name.replace("emg.xdf", "emg_Camera_1.mkv")
    taken.write_bytes(b"x")
    assert paths.video("Camera 1").name.endswith("_Camera_1_2.mkv")
