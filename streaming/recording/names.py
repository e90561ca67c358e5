"""Where a recording goes: LabRecorder's path templates, its next free run and ``_oldN`` rule.

LabRecorder (App-LabRecorder ``src/mainwindow.cpp``, ``LabRecorder.cfg``) names a recording by a
study root plus a template: BIDS ``sub-%p/ses-%s/%m/sub-%p_ses-%s_task-%b[_acq-%a]_run-%r_%m.xdf``
(``%p`` participant, ``%s`` session, ``%b`` task/block, ``%a`` acquisition, ``%r`` run as three
digits, ``%m`` modality) or a legacy one such as ``exp%n/block_%b.xdf`` (``%n`` the counter). The
run is the lowest number from 1 whose file does not exist yet; a file that exists anyway (a run
given explicitly) is renamed ``<stem>_old<N>.xdf``, never overwritten. With BIDS, empty labels
take LabRecorder's defaults (``P001``, ``S001``, task ``Default``).

Here ``[...]`` in a template is an optional part, kept only when its placeholders are all
non-empty (LabRecorder builds the BIDS name without ``_acq-%a`` when the acquisition is empty).
The companions of a templated XDF sit beside it: ``<stem>_session.json`` and one
``<stem>_<stream>.mkv`` per video stream (the XDF names its video file, so a renamed old run keeps
its own video).
"""

from __future__ import annotations

import ntpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from streaming.config import Config
from streaming.errors import SessionFileError

__all__ = [
    "BIDS_TEMPLATE",
    "FileLabel",
    "FileNameFields",
    "PathTemplate",
    "SessionPaths",
    "check_label",
    "check_template",
    "expand_template",
    "folder_paths",
    "move_aside",
    "next_free_run",
    "templated_paths",
]

BIDS_TEMPLATE = "sub-%p/ses-%s/%m/sub-%p_ses-%s_task-%b[_acq-%a]_run-%r_%m.xdf"
MAX_RUN = 1000  # LabRecorder looks for a free run up to here
_BIDS_DEFAULTS = {"participant": "P001", "session": "S001", "task": "Default"}
_PLACEHOLDERS = {
    "p": "participant",
    "s": "session",
    "b": "task",
    "a": "acquisition",
    "m": "modality",
}
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_UNSAFE = re.compile(r"[/\\\x00]|^\.\.?$")


def check_label(key: str, value: str) -> str:
    """``value`` if it can stand in a file name (no separator, not ``.`` or ``..``)."""
    if _UNSAFE.search(value.strip()):
        raise SessionFileError(f"file name field {key}={value!r}: no '/', '\\', '.' or '..' labels")
    return value


def check_template(template: str) -> str:
    """``template`` if every path it names stays below the study root: relative, no ``..``."""
    text = template.strip()
    parts = re.split(r"[/\\]", text)
    if text.startswith(("/", "\\")) or ntpath.splitdrive(text)[0] or ".." in parts:
        raise SessionFileError(
            f"file name template {template!r}: use a path below the root (relative, no '..')"
        )
    return template


def _below(root: Path, relative: str) -> Path:
    """``root / relative``, refused unless it stays below ``root`` (absolute or ``..``: a
    template checked by :func:`check_template` never gets here)."""
    rel = PurePosixPath(relative.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise SessionFileError(f"recording path {relative!r} would leave the root {root}")
    return root / rel


def _label_field(value: str, info: ValidationInfo) -> str:
    """A file-name label, refused when given (a CLI option, a session file, a remote
    ``filename``), not at the start of the recording it would name."""
    try:
        return check_label(str(info.field_name), value)
    except SessionFileError as exc:
        raise ValueError(str(exc)) from None


def _template_field(value: str) -> str:
    try:
        return check_template(value)
    except SessionFileError as exc:
        raise ValueError(str(exc)) from None


FileLabel = Annotated[str, AfterValidator(_label_field)]  # checked by check_label
PathTemplate = Annotated[str, AfterValidator(_template_field)]  # checked by check_template


class FileNameFields(Config):
    """LabRecorder's file-name fields (its remote ``filename`` command sets the same ones)."""

    template: PathTemplate = (
        ""  # "" -> a session folder (root/session/session.xdf); "bids"; or a template
    )
    participant: FileLabel = ""
    session: FileLabel = ""
    task: FileLabel = ""
    run: int | None = Field(default=None, ge=0)  # None or 0: the next free run
    acquisition: FileLabel = ""
    modality: FileLabel = "emg"  # BIDS datatype folder and suffix (%m); LabRecorder offers eeg, ...

    def resolved_template(self) -> str:
        return BIDS_TEMPLATE if self.template.strip().lower() == "bids" else self.template


@dataclass(frozen=True)
class SessionPaths:
    """The files of one recording: the XDF, its ``session.json`` and its video files."""

    xdf: Path
    info: Path
    video_prefix: str  # "" in a session folder, "<stem>_" beside a templated XDF

    @property
    def folder(self) -> Path:
        return self.xdf.parent

    def video(self, stream_name: str) -> Path:
        """A new video file for ``stream_name``; never one that exists (a renamed run's)."""
        base = self.video_prefix + re.sub(r"[^\w.\-]", "_", stream_name)
        path, n = self.folder / f"{base}.mkv", 2
        while path.exists():
            path, n = self.folder / f"{base}_{n}.mkv", n + 1
        return path


def folder_paths(folder: Path) -> SessionPaths:
    """A session folder (DESIGN.md): ``session.xdf``, ``session.json``, ``<stream>.mkv``."""
    return SessionPaths(folder / "session.xdf", folder / "session.json", "")


def expand_template(template: str, fields: FileNameFields, run: int) -> str:
    """The relative path a template names for these fields and run (LabRecorder's rules)."""
    bids = fields.template.strip().lower() == "bids"
    values = {}
    for letter, key in _PLACEHOLDERS.items():
        value = str(getattr(fields, key)).strip()
        if bids and not value:
            value = _BIDS_DEFAULTS.get(key, value)
        values[letter] = check_label(key, value)
    values["r"] = values["n"] = f"{run:03d}"

    def substitute(text: str) -> str:
        return re.sub(r"%([psbamrn])", lambda m: values[m[1]], text)

    def optional(match: re.Match[str]) -> str:
        used = re.findall(r"%([psbamrn])", match[1])
        return substitute(match[1]) if all(values[u] for u in used) else ""

    path = substitute(_OPTIONAL.sub(optional, template))
    missing = [_PLACEHOLDERS[u] for u in re.findall(r"%([psbam])", template) if not values[u]]
    if missing and not bids:
        raise SessionFileError(
            f"file name template {template!r} needs {', '.join(dict.fromkeys(missing))}"
        )
    check_template(template)
    if "%" in path or not path.strip() or path.startswith("/"):
        raise SessionFileError(
            f"file name template {template!r}: use a relative path with %p %s %b %a %r %n %m"
        )
    return path if path.endswith(".xdf") else path + ".xdf"


def next_free_run(root: Path, template: str, fields: FileNameFields) -> int:
    """The lowest run from 1 whose file does not exist (LabRecorder: up to 1000)."""
    if not re.search(r"%[rn]", template):
        return 1
    for run in range(1, MAX_RUN + 1):
        if not _below(root, expand_template(template, fields, run)).exists():
            return run
    raise SessionFileError(f"{root}: runs 1..{MAX_RUN} of {template!r} all exist")


def templated_paths(root: str | Path, fields: FileNameFields) -> SessionPaths:
    """The files of a templated recording; an existing XDF of that name is moved aside."""
    template = fields.resolved_template()
    root = Path(root)
    run = fields.run or next_free_run(root, template, fields)
    xdf = _below(root, expand_template(template, fields, run))
    stem = xdf.name[: -len(".xdf")]
    paths = SessionPaths(xdf, xdf.with_name(f"{stem}_session.json"), f"{stem}_")
    if xdf.is_dir():
        raise SessionFileError(f"recording path {xdf} exists and is a folder")
    if xdf.exists():
        move_aside(paths)
    try:
        xdf.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SessionFileError(f"cannot create the folder {xdf.parent}: {exc.strerror}") from None
    return paths


def move_aside(paths: SessionPaths) -> Path:
    """Rename an existing recording's XDF (and its session.json) to ``<stem>_old<N>`` as
    LabRecorder does; its video files keep their names (the old XDF refers to them)."""
    stem = paths.xdf.name[: -len(".xdf")]
    n = 1
    while paths.xdf.with_name(f"{stem}_old{n}.xdf").exists():
        n += 1
    old = paths.xdf.with_name(f"{stem}_old{n}.xdf")
    try:
        paths.xdf.rename(old)
        if paths.info.exists():
            paths.info.rename(paths.xdf.with_name(f"{stem}_old{n}_session.json"))
    except OSError as exc:
        raise SessionFileError(f"cannot rename {paths.xdf} to {old.name}: {exc.strerror}") from None
    return old
