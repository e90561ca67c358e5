"""Settings of ``eifer record`` (``configs/nodes/recorder.toml``): what to record, where, and the
remote control socket. A module of its own so the recorder and its per-stream writers
(:mod:`streaming.recording.stream_recorder`) both import it without importing each other."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat

from streaming.acquisition.lsl_io import StreamSelector
from streaming.config import Config
from streaming.recording.names import FileLabel, FileNameFields, PathTemplate

__all__ = ["RecorderConfig", "RemoteControlConfig", "SelectorConfig"]


class SelectorConfig(Config):
    """A stream to record, by name, type and/or source id (None: any)."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name, self.type, self.source_id)


class RemoteControlConfig(Config):
    """LabRecorder's remote control socket (``RCSEnabled``, ``RCSPort``, ``AutoStart``)."""

    enabled: bool = False
    host: str = "127.0.0.1"  # loopback: only scripts on this machine (LabRecorder: any)
    port: int = Field(default=22345, ge=0, lt=65536)  # LabRecorder's; 0 = any free port
    # hosts whose scripts may connect: addresses, networks ("10.0.0.0/24") or host names
    # (resolved at start); others are refused and logged. Default: this machine only
    allow: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"], min_length=1)
    auto_start: bool = False  # start recording at once, as without remote control


class RecorderConfig(Config):
    """Settings of ``eifer record`` (``configs/nodes/recorder.toml``)."""

    root: str = "sessions"
    session: FileLabel = ""  # folder name ("" -> the start time); with a template: its %s label
    # LabRecorder's path template ("" = a session folder; "bids" = its BIDS template)
    path_template: PathTemplate = ""
    task: FileLabel = ""  # %b
    run: int | None = Field(default=None, ge=0)  # %r / %n; None or 0: the next free run
    acquisition: FileLabel = ""  # %a
    modality: FileLabel = "emg"  # %m
    # streams that must be there, as LabRecorder's RequiredStreams: "Name" or "Name (hostname)"
    required_streams: list[str] = Field(default_factory=list)
    missing_required: Literal["ask", "refuse", "record"] = "ask"
    required_wait_s: NonNegativeFloat = 5.0  # at a start: how long to look for them
    remote_control: RemoteControlConfig = Field(default_factory=RemoteControlConfig)
    streams: list[SelectorConfig] = Field(default_factory=list)  # [] = every visible stream
    participant: FileLabel = ""
    electrode_scheme: str = "fridlund"
    protocol: str = ""
    notes: str = ""
    flush_interval_s: PositiveFloat = 0.5  # data reach disk within about this long
    clock_offset_interval_s: PositiveFloat = 5.0  # as LabRecorder
    boundary_interval_s: PositiveFloat = 10.0
    discover_interval_s: PositiveFloat = 2.0
    status_interval_s: PositiveFloat = 1.0
    video_codec: str | None = None  # None: x264 lossless RGB / FFV1 depth (bit-exact)
    drain_timeout_s: PositiveFloat = 30.0  # at a stop: longest wait to save what is pending
    drain_quiet_s: PositiveFloat = 0.5  # at a stop: a stream silent this long has no more
    gap_threshold_s: PositiveFloat = 2.0  # a regular stream paused this long: in session.json

    def file_name_fields(self) -> FileNameFields:
        return FileNameFields(
            template=self.path_template,
            participant=self.participant,
            session=self.session,
            task=self.task,
            run=self.run,
            acquisition=self.acquisition,
            modality=self.modality,
        )
