"""Session folders (DESIGN.md): ``session.xdf``, one ``<stream>.mkv`` per video stream, and
``session.json`` (participant, electrode scheme, protocol, notes). Never overwritten.

``session.json`` is replaced atomically (write a temporary file, fsync, rename, fsync the
folder): a crash leaves the old or the new version, never half of one. So that the final version
(stop time, streams) can be written even when the recording filled the disk, the recorder keeps
space for it: :func:`reserve_session_info` pre-allocates ``session.json.reserve``, and
:func:`write_session_info` writes into that space (overwriting allocated blocks needs no free
space) before renaming it.
"""

from __future__ import annotations

import errno
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from streaming.config import Config
from streaming.errors import SessionFileError
from streaming.folders import new_folder

__all__ = [
    "SessionInfo",
    "create_session_folder",
    "read_session_info",
    "reserve_session_info",
    "video_file_name",
    "write_session_info",
]

INFO_FILE = "session.json"
RESERVE_FILE = "session.json.reserve"
TMP_FILE = "session.json.tmp"
RESERVE_BYTES = 64 * 1024  # the final session.json of a session with many streams fits
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class SessionInfo(Config):
    """What ``session.json`` holds."""

    format: int = 1
    participant: str = ""
    electrode_scheme: str = "fridlund"
    protocol: str = ""
    notes: str = ""
    started: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    stopped: str = ""
    streams: list[dict[str, object]] = Field(default_factory=list)
    stop_reason: str = ""
    # LabRecorder's file-name fields of a templated recording (empty in a session folder)
    file_name_fields: dict[str, object] = Field(default_factory=dict)
    required_streams_missing: list[str] = Field(default_factory=list)  # at the start
    # per recorded electrode-quality stream (by name): streaming.recording.quality_timeline
    quality: dict[str, dict[str, object]] = Field(default_factory=dict)


def create_session_folder(root: str | Path, name: str) -> Path:
    """``root/name``, created new; an existing session is never reused or overwritten."""
    if not re.fullmatch(r"[\w.\-]+", name):
        raise SessionFileError(f"session name {name!r}: use letters, digits, '.', '_' and '-'")
    path = Path(root) / name
    try:
        new_folder(
            path,
            SessionFileError,
            f"session {path} exists; a session is never overwritten: choose another --session",
        )
    except OSError as exc:  # read-only disk, no permission, a file where a folder should be
        raise SessionFileError(
            f"cannot create the session folder {path}: {exc.strerror or exc}"
        ) from None
    return path


def reserve_session_info(
    folder: Path, size: int = RESERVE_BYTES, file_name: str = INFO_FILE
) -> None:
    """Pre-allocate the space of the final ``session.json`` (see the module docstring);
    ``file_name``: a templated recording's ``<stem>_session.json``."""
    path = folder / (file_name + ".reserve")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno in _DISK_FULL:
                    raise
                os.write(fd, b" " * size)  # file systems without fallocate
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise SessionFileError(
            f"cannot reserve {size // 1024} KB for {folder / file_name} "
            f"({exc.strerror or exc}): is the disk full?"
        ) from None


def write_session_info(folder: Path, info: SessionInfo, file_name: str = INFO_FILE) -> None:
    """Replace ``session.json`` atomically, in the reserved space when there is one.

    On failure the previous ``session.json`` stays as it was, no temporary file is left, and
    :class:`SessionFileError` says why.
    """
    data = json.dumps(info.model_dump(), indent=2).encode()
    reserve, tmp = folder / (file_name + ".reserve"), folder / (file_name + ".tmp")
    source = reserve if reserve.is_file() else tmp
    try:
        fd = os.open(source, os.O_WRONLY | os.O_CREAT, 0o644)  # no O_TRUNC: keep the blocks
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(source, folder / file_name)
        _fsync_folder(folder)
    except OSError as exc:
        if source == tmp:
            tmp.unlink(missing_ok=True)
        raise SessionFileError(
            f"cannot write {folder / file_name} ({exc.strerror or exc}); "
            "the previous version is kept"
        ) from None


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: a rename reaches the disk with its folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_session_info(folder: str | Path) -> SessionInfo:
    """``folder/session.json`` validated; SessionFileError names what is missing or wrong."""
    path = Path(folder) / "session.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SessionFileError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise SessionFileError(f"{path} is not valid JSON ({exc})") from None
    from streaming.config import validate

    return validate(SessionInfo, data, str(path))


def video_file_name(stream_name: str) -> str:
    """The video file of a stream, safe as a file name."""
    return re.sub(r"[^\w.\-]", "_", stream_name) + ".mkv"
