"""``eifer record`` and ``eifer export`` on paths they cannot write: one line, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_cli(*argv: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "nodes.cli", *argv], capture_output=True, text=True, cwd=REPO,
        timeout=60,
    )  # fmt: skip
    return done.returncode, done.stderr + done.stdout


def test_record_into_an_unwritable_root_ends_in_one_line(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    code, output = _run_cli("record", "--root", str(not_a_folder / "sessions"), "--quiet")
    assert code == 1 and "Traceback" not in output, output
    assert re.fullmatch(r"eifer record: error: cannot create the session folder .*\n", output)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_record_into_a_read_only_root_ends_in_one_line(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    code, output = _run_cli("record", "--root", str(read_only), "--quiet")
    assert code == 1 and "Traceback" not in output, output
    assert "Permission denied" in output and len(output.strip().splitlines()) == 1


def test_export_to_an_unwritable_folder_ends_in_one_line(session_dir, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    code, output = _run_cli("export", str(session_dir), "--to", "npz", "--out",
                               str(not_a_folder / "out"), "--log-level", "WARNING")  # fmt: skip
    assert code == 1 and "Traceback" not in output, output
    assert re.fullmatch(r"eifer export: error: cannot write the export to .*\n", output), output


@pytest.fixture
def read_only_disk(tmp_path):
    """A read-only file system (root can write everywhere else). Needs root and mount rights."""
    mount = tmp_path / "read-only"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_record_and_export_onto_a_read_only_disk_end_in_one_line(read_only_disk, session_dir):
    code, output = _run_cli("record", "--root", str(read_only_disk), "--quiet")
    assert code == 1 and "Traceback" not in output, output
    assert re.fullmatch(r"eifer record: error: .*Read-only file system\n", output), output
    code, output = _run_cli("export", str(session_dir), "--to", "csv", "--out",
                            str(read_only_disk / "out"), "--log-level", "WARNING")  # fmt: skip
    assert code == 1 and "Traceback" not in output, output
    assert re.fullmatch(r"eifer export: error: .*Read-only file system\n", output), output


@pytest.mark.parametrize("template", ["../../x%p", "sub-%p/../../../x"])
def test_record_refuses_a_template_that_leaves_the_root(tmp_path, template):
    """Issue 18, item 3: ``--template`` with ``..`` is refused before anything is written."""
    root = tmp_path / "a" / "b" / "study"
    code, output = _run_cli("record", "--template", template, "--root", str(root),
                            "--participant", "P01", "--duration", "1", "--quiet")  # fmt: skip
    assert code != 0 and "Traceback" not in output, output
    assert "below the root" in output, output
    assert list(tmp_path.rglob("*")) == []
