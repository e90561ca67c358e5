"""``eifer train dataset --session PATH`` finds every session at or below PATH.

A session is a folder with ``session.xdf`` or an ``.xdf`` file; PATH may be a folder of
participants (``synth/P0200/occluded-1/``, what ``eifer synth`` writes), one session folder, its
``session.xdf`` or a loose XDF file. Real (short) sessions written by the project's writers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streaming.pipeline.features import get_feature
from training.config import DatasetConfig
from training.errors import DatasetError
from training.sessions import find_sessions, read_session
from training.toy_sessions import ToySpec, write_toy_session


def _short(folder: Path, participant: str, seed: int) -> Path:
    spec = ToySpec(participant, seed=seed, repetitions=1, perform_s=0.5, rest_s=0.3)
    return write_toy_session(folder, spec)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``synth/P0200/occluded-1``, ``synth/P0201/occluded-{1,2}`` (the 2nd with a sub-folder
    holding an XDF of its own, part of that session), ``loose/run-a.xdf`` (+ its video), and an
    ``empty/`` folder and a hidden ``synth/.cache/`` with an XDF that are not sessions."""
    root = tmp_path_factory.mktemp("discovery")
    _short(root / "synth" / "P0200" / "occluded-1", "P0200", 200)
    _short(root / "synth" / "P0201" / "occluded-1", "P0201", 201)
    second = _short(root / "synth" / "P0201" / "occluded-2", "P0201", 202)
    (second / "extra").mkdir()
    shutil.copy(second / "session.xdf", second / "extra" / "backup.xdf")
    (root / "synth" / ".cache").mkdir()
    shutil.copy(second / "session.xdf", root / "synth" / ".cache" / "stale.xdf")
    (root / "loose").mkdir()
    shutil.copy(second / "session.xdf", root / "loose" / "run-a.xdf")
    shutil.copy(second / "Video.mkv", root / "loose" / "Video.mkv")
    (root / "empty" / "deeper").mkdir(parents=True)
    return root


def test_a_folder_of_participants_gives_every_session_below_it_sorted(tree: Path) -> None:
    synth = tree / "synth"
    expected = [
        synth / "P0200" / "occluded-1",
        synth / "P0201" / "occluded-1",
        synth / "P0201" / "occluded-2",
    ]
    assert find_sessions([str(synth)]) == expected
    assert find_sessions([tree]) == [tree / "loose" / "run-a.xdf", *expected]
    # one participant, one session folder, its session.xdf: that session only
    assert find_sessions([synth / "P0201"]) == expected[1:]
    assert find_sessions([expected[0]]) == expected[:1]
    assert find_sessions([expected[0] / "session.xdf"]) == expected[:1]
    # overlapping paths: each session once, in the order first reached
    assert find_sessions([expected[2], synth]) == [expected[2], *expected[:2]]


def test_a_loose_xdf_file_is_a_session_read_like_its_folder(tree: Path) -> None:
    loose = tree / "loose" / "run-a.xdf"
    assert find_sessions([loose]) == [loose]
    config, feature = DatasetConfig(crops=False), get_feature("low_latency")
    table = read_session(loose, config, feature)
    original = read_session(tree / "synth" / "P0201" / "occluded-2", config, feature)
    assert table.participant == "run-a"  # no session.json of its own: the file's stem
    assert original.participant == "P0201"
    np.testing.assert_array_equal(table.emg_uv, original.emg_uv)
    np.testing.assert_array_equal(table.movement, original.movement)


@pytest.mark.parametrize("where", ["empty", "missing", "not-xdf"])
def test_no_session_is_an_error_naming_the_path(tree: Path, where: str) -> None:
    path = {
        "empty": tree / "empty",
        "missing": tree / "nowhere",
        "not-xdf": tree / "synth" / "P0200" / "occluded-1" / "Video.mkv",
    }[where]
    with pytest.raises(DatasetError, match=str(path)):
        find_sessions([tree / "synth", path])


def test_cli_builds_a_training_set_from_a_folder_of_participants(
    tree: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "nodes.cli", "train", "dataset", "--no-progress",
               "--set", f'output="{tmp_path}"', "--set", "crops=false"]  # fmt: skip
    built = subprocess.run(
        [*command, "--session", str(tree / "synth")], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-2000:]
    index = json.loads(next(tmp_path.glob("*/dataset.json")).read_text())
    assert len(index["parts"]) == 3 and index["participants"] == ["P0200", "P0201"]
    failed = subprocess.run(
        [*command, "--set", 'name="other"', "--session", str(tree / "empty")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tree / "empty") in lines[0] and "no session" in lines[0], lines
