"""One "new folder, never overwrite" helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from streaming.errors import SessionFileError
from streaming.folders import new_folder


def test_a_new_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    folder = new_folder(tmp_path / "a" / "b", SessionFileError, "exists")
    assert folder == tmp_path / "a" / "b" and folder.is_dir()


def test_an_existing_folder_is_never_reused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kept").write_text("x")
    with pytest.raises(SessionFileError, match=r"^run exists; never overwritten$"):
        new_folder(tmp_path / "run", SessionFileError, "run exists; never overwritten")
    assert (tmp_path / "run" / "kept").read_text() == "x"


def test_a_file_in_the_way_is_the_os_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        new_folder(tmp_path / "file" / "sub", SessionFileError, "exists")
