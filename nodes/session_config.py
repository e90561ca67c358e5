"""A session file (``configs/sessions/*.toml``): its nodes, parameters, preparation and view.

Parameters (``[params]``) are named once and used anywhere in the file as ``{name}``
(``--set params.bus=...`` changes every use; ``eifer demo``'s options are such parameters). A
value that is exactly ``"{name}"`` takes the parameter's type (``seed = "{participant_seed}"`` is
an integer); inside other text it is written out (floats as ``%g``). ``{pid}`` is the runner's
process id (unique stream names) and may be used by parameters too; each parameter may use those
above it. Parameters are filled in when the file is validated; ``{work}`` (the session's work
folder) and the preparation's files (``{demo_bundle}``, ``{demo_profile}``) when a node starts
(:func:`node_argv`), where an unknown name is a :class:`SessionError`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from simulation.demo_preparation import PLACEHOLDERS, DemoPreparation
from streaming.addresses import BusAddressError, tcp_host_port
from streaming.config import Config
from streaming.errors import EiferError

__all__ = [
    "LATE_PLACEHOLDERS",
    "NodeSpec",
    "SessionConfig",
    "SessionError",
    "ViewConfig",
    "node_argv",
    "substitute",
]

LATE_PLACEHOLDERS = ("work", *PLACEHOLDERS)  # known only once the session runs
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
Stage = Literal["before_prepare", "after_prepare", "first_frame"]


class SessionError(EiferError):
    """A session cannot start or a node of it failed."""


def as_text(value: Any) -> str:
    """A parameter written into text: floats as ``%g`` (30.0 -> ``30``), booleans as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def _fill(value: Any, values: dict[str, Any]) -> Any:
    """``{name}`` of ``values`` in ``value`` (tables and arrays walked); other names are kept."""
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and whole[1] in values:
        return values[whole[1]]
    return _PLACEHOLDER.sub(lambda m: as_text(values[m[1]]) if m[1] in values else m[0], value)


def _address(value: int | str) -> int | str:
    if isinstance(value, str) and not value.startswith("ipc://"):
        try:
            tcp_host_port(value, "port")
        except BusAddressError as exc:
            raise ValueError(str(exc)) from None
    return value


Port = Annotated[int, Field(ge=1, le=65535)] | Annotated[str, Field(min_length=1)]


class NodeSpec(Config):
    """One node of the session: an ``eifer`` command, its config file and overrides."""

    command: list[str] = Field(min_length=1)  # e.g. ["node", "emg", "--source", "lsl"]
    config: str = ""  # its --config FILE ("" = the node's shipped default)
    set: dict[str, Any] = Field(default_factory=dict)  # its --set overrides (tables nest)
    enabled: bool = True
    # when it starts: before the preparation (a page that is up at once), after it (the
    # default), or with the first frame published on the view's bus (the protocol of the demo)
    start: Stage = "after_prepare"
    may_finish: bool = False  # a protocol that ends; every other node runs until stopped
    stream: str = ""  # LSL stream this node brings up; the session waits for it
    start_timeout_s: PositiveFloat = 60.0
    hint: str = ""  # shown when the stream does not come (e.g. "is the amplifier on?")
    # what it binds on loopback, checked free before anything starts: a TCP port or a bus
    # address tcp://HOST:PORT
    ports: list[Port] = Field(default_factory=list)
    records: bool = False  # the recorder: stopped first, given stop_timeout_s to drain
    show: list[str] = Field(default_factory=list)  # lines printed when it starts (its URL...)

    @field_validator("command", mode="before")
    @classmethod
    def _words(cls, value: Any) -> Any:
        return [as_text(v) for v in value] if isinstance(value, list) else value

    @field_validator("ports")
    @classmethod
    def _addresses(cls, value: list[int | str]) -> list[int | str]:
        return [_address(v) for v in value]

    @model_validator(mode="after")
    def _eifer_command(self) -> NodeSpec:
        if not _WORD.match(self.command[0]):
            raise ValueError(f"command {self.command!r}: start with an eifer command word")
        from nodes.cli import command_error

        problem = command_error(self.command)
        if problem is not None:  # refused with the session file, before any node starts
            raise ValueError(f"command {self.command!r}: {problem}")
        return self


class ViewConfig(Config):
    """The terminal view of the bus: what is published, as ``eifer listen`` shows it."""

    bus: list[str] = Field(default_factory=list)  # addresses to watch; [] = no view
    every: PositiveInt = 15  # every Nth frame (the `muscle` topic); instructions, status all


class Prepare(Config):
    demo: DemoPreparation | None = None  # the demo's bundle and calibration profile


class SessionConfig(Config):
    name: str = "session"
    status_interval_s: NonNegativeFloat = 2.0  # the one status line; 0 = never
    stop_timeout_s: PositiveFloat = 40.0  # the recorder's longest drain and close after SIGTERM
    node_stop_timeout_s: PositiveFloat = 10.0  # other nodes: then they are killed
    lsl_scope: Literal["", "machine", "link", "site"] = ""  # "": leave LSL's config alone
    params: dict[str, Any] = Field(default_factory=dict)  # {name} anywhere in the file
    prepare: Prepare = Prepare()
    show: list[str] = Field(default_factory=list)  # lines printed before the preparation
    view: ViewConfig = ViewConfig()
    nodes: dict[str, NodeSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _fill_params(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("params", {}), dict):
            return data
        values: dict[str, Any] = {"pid": str(os.getpid())}
        for name, value in data.get("params", {}).items():
            values[name] = _fill(value, values)
        filled = {key: _fill(value, values) for key, value in data.items() if key != "params"}
        return {**filled, "params": {k: v for k, v in values.items() if k != "pid"}}

    @model_validator(mode="after")
    def _first_frame_needs_a_view(self) -> SessionConfig:
        late = [n for n, node in self.enabled_nodes().items() if node.start == "first_frame"]
        if late and not self.view.bus:
            raise ValueError(f"{', '.join(late)}: start = 'first_frame' needs view.bus")
        return self

    def enabled_nodes(self) -> dict[str, NodeSpec]:
        return {name: node for name, node in self.nodes.items() if node.enabled}


def substitute(text: str, values: dict[str, str]) -> str:
    """``{work}``, ``{demo_bundle}``... in ``text``; an unknown ``{name}`` is a clear error."""

    def one(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            raise SessionError(
                f"{{{key}}} in {text!r} is not known here; use {', '.join(sorted(values))}"
            )
        return values[key]

    return _PLACEHOLDER.sub(one, text)


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, dotted + ".")
        else:
            items.append((dotted, value))
    return items


def _toml_literal(value: Any, values: dict[str, str]) -> str:
    """A TOML literal for ``--set`` (JSON's strings, numbers, booleans and arrays are TOML)."""
    if isinstance(value, str):
        return json.dumps(substitute(value, values))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v, values) for v in value) + "]"
    return json.dumps(value)


def node_argv(node: NodeSpec, values: dict[str, str], base: Path | None = None) -> list[str]:
    """The ``eifer`` argument list of a node: command, ``--config``, then each ``--set``."""
    argv = [substitute(word, values) for word in node.command]
    if node.config:
        path = Path(substitute(node.config, values))
        if not path.is_absolute() and base is not None and (base / path).is_file():
            path = base / path
        argv += ["--config", str(path)]
    for key, value in _flatten(node.set):
        argv += ["--set", f"{key}={_toml_literal(value, values)}"]
    return argv
