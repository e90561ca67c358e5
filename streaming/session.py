"""Session folders (DESIGN.md): ``session.xdf``, one ``<stream>.mkv`` per video stream, and
``session.json`` (participant, electrode scheme, protocol, notes). Never overwritten."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from streaming.config import Config
from streaming.errors import SessionFileError

__all__ = ["SessionInfo", "create_session_folder", "read_session_info", "video_file_name"]


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


def create_session_folder(root: str | Path, name: str) -> Path:
    """``root/name``, created new; an existing session is never reused or overwritten."""
    if not re.fullmatch(r"[\w.\-]+", name):
        raise SessionFileError(f"session name {name!r}: use letters, digits, '.', '_' and '-'")
    path = Path(root) / name
    try:
        path.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise SessionFileError(
            f"session {path} exists; a session is never overwritten: choose another --session"
        ) from None
    return path


def write_session_info(folder: Path, info: SessionInfo) -> None:
    """Write ``session.json`` atomically (a crash leaves the old or the new one, never half)."""
    tmp = folder / "session.json.tmp"
    tmp.write_text(json.dumps(info.model_dump(), indent=2))
    tmp.replace(folder / "session.json")


def read_session_info(folder: str | Path) -> SessionInfo:
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
