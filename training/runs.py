"""The run plumbing every trainer (``eifer train mlp|encoders|phase1``) shares, written once.

A run lives in a folder ``<output>/<run_name or UTC start time>`` that is never overwritten;
``--resume`` continues one with the config of its ``run.json``. Each run keeps ``train.log``
(the ``training`` loggers while it runs) and checkpoints (``last.pt``: saved atomically, read
with ``torch.load(weights_only=True)``, resumed only under the config hash that made them).
Under ``torchrun`` every rank opens the same run: rank 0 makes the folder and writes the files,
the others are told its name and read from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

import torch
from pydantic import BaseModel

from streaming.folders import new_folder
from training.distributed import DistContext, init_distributed
from training.errors import RunError

__all__ = [
    "CHECKPOINT",
    "LOG_FILE",
    "RUN_FILE",
    "Progress",
    "Run",
    "config_hash",
    "git_commit",
    "load_checkpoint",
    "new_run",
    "open_run",
    "pick_device",
    "run_log",
    "save_checkpoint",
]

CHECKPOINT = "last.pt"
LOG_FILE = "train.log"
RUN_FILE = "run.json"
# where and how a run goes, not what it learns: left out of the config hash
RUN_ONLY = ("output", "run_name", "device", "threads")
ConfigT = TypeVar("ConfigT", bound=BaseModel)


class _RunSettings(Protocol):
    """The fields every trainer's config has."""

    output: str
    run_name: str
    device: str
    threads: int


def new_run(output: str, run_name: str) -> Path:
    """Create ``output/<run_name or UTC start time>``; RunError if it exists (a run is never
    overwritten)."""
    name = run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = Path(output) / name
    return new_folder(
        folder, RunError, f"run folder {folder} exists; a run is never overwritten: choose "
        "another run_name, or continue it with --resume",
    )  # fmt: skip


def config_hash(config: BaseModel, *also: Any, ignore: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of what the config trains (:data:`RUN_ONLY` and ``ignore``, a pydantic exclude
    spec, left out), with ``also`` (e.g. the training set's hash): a checkpoint resumes only
    under the hash that made it."""
    exclude = {key: True for key in RUN_ONLY} | dict(ignore or {})
    data = config.model_dump(mode="json", exclude=exclude)
    text = json.dumps([data, *also] if also else data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def git_commit() -> str:
    """The commit of this code (``+dirty`` with uncommitted changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when torch sees it, else the CPU; ``cuda`` without CUDA is a RunError."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


@contextmanager
def run_log(folder: Path) -> Iterator[None]:
    """The run's ``train.log`` receives the trainer's log while the run is in this block."""
    handler = logging.FileHandler(folder / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("training")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file renamed over ``path``: a crash leaves the old one."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path, command: str) -> dict[str, Any]:
    """The checkpoint at ``path`` of ``eifer train <command>``, whatever config made it
    (``weights_only``); a truncated or foreign file is a RunError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for bad files
        raise RunError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise RunError(f"{path}: not a checkpoint of `eifer train {command}`")
    return state


def load_checkpoint(
    path: Path, expected_hash: str, command: str, *, made_with: str = "another config"
) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (None when there is none) if the config hash ``expected_hash``
    made it; a truncated or foreign file or another config is a RunError (``command``:
    the ``eifer train`` subcommand, ``made_with``: what a foreign hash means, for the message)."""
    if not path.is_file():
        return None
    state = read_checkpoint(path, command)
    if state.get("config_hash") != expected_hash:
        raise RunError(f"{path}: made with {made_with}; not resumed")
    return state


class Progress(Protocol):
    """What a trainer does with its progress bar (a tqdm bar has these)."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix(self, **values: Any) -> object: ...

    def close(self) -> object: ...


class _NoBar:
    """Stands in for a progress bar where none is shown (other ranks, ``progress=False``)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Run(Generic[ConfigT]):
    """One trainer's run as seen by this rank: its config (a resumed run's own), folder,
    distributed context and device, and ``run.json`` as it was when resumed (``info``; empty
    for a new run)."""

    config: ConfigT
    folder: Path
    ctx: DistContext
    device: torch.device
    command: str  # the ``eifer train`` subcommand, for messages
    resumed: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> bool:
        return self.ctx.is_main

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT

    def write_info(self, info: dict[str, Any]) -> None:
        """Rank 0 writes ``run.json`` (atomically: a resume never reads half of one)."""
        if self.main:
            tmp = self.folder / (RUN_FILE + ".tmp")
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, self.folder / RUN_FILE)

    def load_checkpoint(self, expected_hash: str) -> dict[str, Any] | None:
        """The run's ``last.pt`` (:func:`load_checkpoint`), on every rank."""
        return load_checkpoint(self.checkpoint, expected_hash, self.command)

    def end_epoch(self, state: dict[str, Any], stop_after_epoch: int | None) -> bool:
        """Rank 0 saves ``state`` (with its ``epoch``) as ``last.pt``; every rank waits for it.
        True when the run stops here (``stop_after_epoch``: tests of resume)."""
        if self.main:
            save_checkpoint(self.checkpoint, state)
        self.ctx.barrier()
        return state["epoch"] == stop_after_epoch

    def progress(self, show: bool, **bar: Any) -> Progress:
        """A tqdm bar (``bar``: its arguments) on rank 0 when ``show``, else one that shows
        nothing."""
        if not (show and self.main):
            return _NoBar()
        from tqdm import tqdm

        return cast(Progress, tqdm(**bar))


def _read_info(resume: str | Path, command: str) -> dict[str, Any]:
    info_file = Path(resume) / RUN_FILE
    if not info_file.is_file():
        raise RunError(f"{info_file}: missing; not a run of `eifer train {command}`")
    return cast(dict[str, Any], json.loads(info_file.read_text()))


@contextmanager
def open_run(
    config: ConfigT | None,
    resume: str | Path | None,
    config_type: type[ConfigT],
    command: str,
    *,
    check: Callable[[ConfigT], None] | None = None,
) -> Iterator[Run[ConfigT]]:
    """The run, on every rank: ``resume``'s folder with the config of its ``run.json``, else a
    new folder for ``config`` (``check`` runs first: a bad config leaves no folder behind);
    its log open, torch's thread count set, the distributed context closed at the end.
    ``command``: the ``eifer train`` subcommand, for messages."""
    info: dict[str, Any] = {}
    if resume is not None:
        info = _read_info(resume, command)
        config = config_type.model_validate(info["config"])
    elif config is None:
        raise RunError("give a config or a run folder to resume")
    elif check is not None:
        check(config)
    settings = cast(_RunSettings, config)
    ctx = init_distributed(settings.device)
    try:
        if resume is not None:
            folder = Path(resume)
        else:
            made = str(new_run(settings.output, settings.run_name)) if ctx.is_main else None
            folder = Path(ctx.broadcast(made))
        with run_log(folder) if ctx.is_main else nullcontext():
            if settings.threads:
                torch.set_num_threads(settings.threads)
            device = ctx.device if ctx.enabled else pick_device(settings.device)
            yield Run(config, folder, ctx, device, command, resume is not None, info)
    finally:
        ctx.close()
