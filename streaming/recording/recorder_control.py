"""The recorder as LabRecorder keeps it between recordings: file-name fields, the stream
selection, required streams, and at most one recording in progress.

``eifer record`` drives it from its options (start at once) or from the remote-control socket
(:mod:`streaming.recording.recorder_remote`: ``filename``, ``select``, ``start``, ``stop``). Every
method is thread-safe: the socket's threads and the node's main loop share one controller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from streaming.acquisition.lsl_io import list_streams
from streaming.config import validate
from streaming.errors import EiferError
from streaming.recording.recorder import Recorder, RecorderConfig
from streaming.recording.required_streams import missing_required

__all__ = ["FILE_NAME_KEYS", "RecorderControlError", "RecorderController"]

log = logging.getLogger(__name__)

# LabRecorder's filename options -> RecorderConfig keys
FILE_NAME_KEYS = {
    "root": "root",
    "template": "path_template",
    "participant": "participant",
    "session": "session",
    "task": "task",
    "run": "run",
    "acquisition": "acquisition",
    "modality": "modality",
}

Selection = Literal["config", "all", "none"]
FRESH_S = 3.0  # a start uses the streams seen this recently (the idle loop looks every ~2 s)
# The idle loop's live resolver forgets a stream not heard from for this long; before it has
# listened this long, a required stream it has not seen yet is "looked for", not "missing".
WATCH_FORGET_S = 5.0


class RecorderControlError(EiferError):
    """A recorder command that cannot be done now (already recording, required streams missing)."""


class RecorderController:
    """File-name fields, selection and the current recording of one recorder process.

    ``ask(question) -> bool`` answers the required-streams question of ``missing_required =
    "ask"`` (a terminal prompt); without it (remote control, no terminal) "ask" refuses.
    """

    def __init__(self, config: RecorderConfig, ask: Callable[[str], bool] | None = None) -> None:
        self.config = config
        self.ask = ask
        self.selection: Selection = "config"
        self.recorder: Recorder | None = None
        self.last_xdf: Path | None = None
        self.visible: list[Any] = []
        self.visible_at = -float("inf")  # monotonic time of the last look for streams
        self._resolver: Any = None  # pylsl.ContinuousResolver while the idle loop watches
        self._watch_since = 0.0
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- LabRecorder's commands

    def set_file_name(self, options: dict[str, str]) -> None:
        """LabRecorder's ``filename {key:value} ...``: the next recording's root and fields.

        As in LabRecorder, file names then follow a template: the one given, else the config's,
        else the BIDS template (LabRecorder's default)."""
        unknown = sorted(set(options) - set(FILE_NAME_KEYS))
        if unknown:
            raise RecorderControlError(
                f"filename: unknown option {unknown[0]!r}; use {', '.join(FILE_NAME_KEYS)}"
            )
        with self._lock:
            data = self.config.model_dump()
            for key, value in options.items():
                field = FILE_NAME_KEYS[key]
                if field == "run":
                    if not value.strip().isdigit():
                        raise RecorderControlError(f"filename: run {value!r} is not a number")
                    data[field] = int(value)
                else:
                    data[field] = value.strip()
            if not data["path_template"]:
                data["path_template"] = "bids"
            self.config = validate(RecorderConfig, data, "filename command")

    def select(self, which: Selection) -> None:
        """``select all`` / ``select none`` (required streams stay selected, as in LabRecorder)."""
        with self._lock:
            self.selection = which

    def refresh(self, timeout_s: float = 1.0) -> list[str]:
        """``update``: look for streams again; returns the required ones still missing."""
        visible = list_streams(timeout_s)
        with self._lock:
            self.visible, self.visible_at = visible, time.monotonic()
        return missing_required(self.config.required_streams, visible)

    def start(self) -> Path:
        """Start a recording (the XDF's path); :class:`RecorderControlError` says why not."""
        with self._lock:
            if self.recorder is not None:
                raise RecorderControlError(f"already recording into {self.recorder.paths.xdf}")
            config, selection = self.config, self.selection
            if selection == "none" and not config.required_streams:
                raise RecorderControlError("no streams selected: send 'select all' first")
            if time.monotonic() - self.visible_at > FRESH_S:
                self.refresh(1.0)
            missing = self._wait_for_required(config)
            if missing:
                self._confirm_missing(config, missing)
            self.recorder = Recorder(
                config, selection=selection, missing_at_start=missing, visible=self.visible
            )
            self.last_xdf = self.recorder.paths.xdf
            log.info("record: recording into %s", self.last_xdf)
            return self.last_xdf

    def stop(self, reason: str = "stopped") -> Path:
        """Stop the recording (drained, footers and session.json written); its XDF's path."""
        with self._lock:
            if self.recorder is None:
                raise RecorderControlError("not recording")
            recorder, self.recorder = self.recorder, None
            recorder.close(reason)
            log.info("record: saved %s", recorder.paths.xdf)
            return recorder.paths.xdf

    # ------------------------------------------------------------------------- the node's loop

    @property
    def recording(self) -> bool:
        """Whether a recording is open (waits for a start or stop under way to finish)."""
        with self._lock:
            return self.recorder is not None

    def poll(self) -> None:
        """Periodic work of the recording; a failed recording is closed and its error raised."""
        with self._lock:
            recorder = self.recorder
            if recorder is None:
                return
            try:
                recorder.poll()
            except EiferError as exc:
                self.recorder = None
                recorder.close(str(exc))
                raise

    def watch(self) -> None:
        """Keep a live (continuous) resolver, so that idle status lines name what it heard
        within the last ``WATCH_FORGET_S``, never what one short look happened to miss."""
        with self._lock:
            if self._resolver is None:
                import pylsl

                self._resolver = pylsl.ContinuousResolver(forget_after=WATCH_FORGET_S)
                self._watch_since = time.monotonic()

    def status_line(self) -> str:
        with self._lock:
            if self.recorder is not None:
                return self.recorder.status_line()
            visible, label = self.visible, "missing required"
            if self._resolver is not None:
                visible = list(self._resolver.results())
                if time.monotonic() - self._watch_since < WATCH_FORGET_S:
                    label = "looking for required"
                else:
                    label = f"missing required (not seen for {WATCH_FORGET_S:g} s)"
            missing = missing_required(self.config.required_streams, visible)
            names = sorted({info.name() for info in visible})
            line = f"idle: {len(names)} streams visible ({', '.join(names) or 'none'})"
            if missing:
                line += f" | {label}: {', '.join(missing)}"
            return line

    def close(self, reason: str = "stopped") -> Path | None:
        """Stop a recording in progress, if any (and the live resolver)."""
        with self._lock:
            self._resolver = None
            return self.stop(reason) if self.recorder is not None else None

    # ------------------------------------------------------------------------------ internals

    def _wait_for_required(self, config: RecorderConfig) -> list[str]:
        if not config.required_streams:
            return []
        deadline = time.monotonic() + config.required_wait_s
        missing = missing_required(config.required_streams, self.visible)
        while missing and time.monotonic() < deadline:
            missing = self.refresh(1.0)
        return missing

    def _confirm_missing(self, config: RecorderConfig, missing: list[str]) -> None:
        text = f"required streams missing: {', '.join(missing)}"
        if config.missing_required == "record":
            log.warning("record: %s; recording anyway (they are added if they appear)", text)
            return
        if config.missing_required == "ask" and self.ask is not None:
            if self.ask(f"{text}. Record anyway? [y/N] "):
                return
            raise RecorderControlError(f"{text}; not started")
        raise RecorderControlError(
            f"{text}; not started (missing_required = {config.missing_required!r}"
            + (", and no terminal to ask" if config.missing_required == "ask" else "")
            + '; set missing_required = "record" to record without them)'
        )
