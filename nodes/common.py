"""What every node shell shares: one way to load its config, and clean shutdown.

Every command takes ``--config FILE`` and repeated ``--set key=value`` (README "Commands").
A command's settings are built in one order, later winning: the shipped default file (or
``--config``), then each ``--set`` (values as TOML literals), then the command's own typed
flags (``--name``, ``--size``...), set as Python values, never as TOML text built with quotes
(so ``--participant 'P"01'`` reaches the config exactly). A bad value fails with one
:class:`~streaming.config.ConfigError` naming where it came from: the ``--set`` or flag that
gave it, else the config file.

Two kinds of command:

- those with a config model (EMG, camera, replay, protocol, display, pipeline...):
  :func:`add_config_arguments` in ``add_arguments``, :func:`load_node_config` in ``run``;
- those whose settings are just their options (listen, streams, export, demo): their options
  added through an :class:`OptionArguments`, :func:`add_option_config_arguments` last in
  ``add_arguments``, :func:`load_option_config` first in ``run``; their config file's keys are
  the option names (``display_port = 8766``).
"""

from __future__ import annotations

import argparse
import math
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model

from streaming.config import Config, apply_overrides, load_toml, set_dotted, validate

__all__ = [
    "OptionArguments",
    "add_config_arguments",
    "add_option_config_arguments",
    "count",
    "load_node_config",
    "load_option_config",
    "non_negative_int",
    "offset_seconds",
    "port",
    "positive_float",
    "restore_sigint",
    "seconds",
    "stop_on_signals",
]

ConfigT = TypeVar("ConfigT", bound=BaseModel)
Flags = Mapping[str, tuple[str, Any]]  # dotted config key -> ("--flag", value or None if absent)

_MODEL = "_option_config_model"
_OPTIONS = "_option_config_flags"


def add_config_arguments(
    parser: argparse.ArgumentParser, example: str = "key=value", default: str = "built-in"
) -> None:
    """``--config FILE`` and repeated ``--set key=value``; ``example`` fits the command."""
    parser.add_argument("--config", metavar="FILE", help=f"TOML config file (default: {default})")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. --set {example} (repeatable)",
    )


def _culprits(exc: ValidationError, origins: Mapping[tuple[str, ...], str]) -> list[str]:
    """The ``--set``/flags whose keys the failing locations are in (or under)."""
    found: list[str] = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        for key, origin in origins.items():
            n = min(len(key), len(loc))
            if n and key[:n] == loc[:n] and origin not in found:
                found.append(origin)
    return found


def load_node_config(
    cls: type[ConfigT],
    args: argparse.Namespace,
    *,
    default: str | Path | None = None,
    flags: Flags | None = None,
) -> ConfigT:
    """``cls`` from ``--config`` (else ``default``, else the model's defaults), ``--set`` and
    ``flags``; errors name the ``--set``/flag at fault, else the file."""
    path = args.config if getattr(args, "config", None) is not None else default
    data: dict[str, Any] = load_toml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    origins: dict[tuple[str, ...], str] = {}
    for item in getattr(args, "overrides", None) or []:
        data = apply_overrides(data, [item])  # a malformed item raises, naming it
        origins[tuple(item.partition("=")[0].strip().split("."))] = f"--set {item}"
    for key, (flag, value) in (flags or {}).items():
        if value is None:
            continue
        set_dotted(data, key, value, flag)
        shown = " ".join(map(str, value)) if isinstance(value, list) else value
        origins[tuple(key.split("."))] = f"{flag} {shown}" if not isinstance(value, bool) else flag
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        culprits = _culprits(exc, origins)
        return validate(cls, data, ", ".join(culprits) if culprits else source)


# ------------------------------------------------------------ commands configured by options


class _AddsArguments(Protocol):
    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action: ...


class OptionArguments:
    """A command's options, recorded as they are added to its parser (argparse keeps no public
    list of them): ``add_argument`` and ``add_argument_group`` as on the parser."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self._target: _AddsArguments = parser
        self.recorded: list[tuple[argparse.Action, str | None]] = []  # (option, its action=)

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action:
        action = self._target.add_argument(*flags, **kwargs)
        self.recorded.append((action, kwargs.get("action")))
        return action

    def add_argument_group(self, title: str) -> OptionArguments:
        """A titled group of the parser's help whose options are recorded here too."""
        group = OptionArguments(self.parser)
        group._target = self.parser.add_argument_group(title)
        group.recorded = self.recorded
        return group


def _field(action: argparse.Action, kind: str | None) -> tuple[Any, Any]:
    """The pydantic field (type, default) an argparse option (added with ``action=kind``)
    stands for."""
    if kind in ("store_true", "store_false"):
        return bool, action.default
    base: Any = action.type if isinstance(action.type, type) else str
    base = getattr(action.type, "config_type", base)  # the checks of seconds, count, port ...
    if action.choices is not None:
        base = Literal[tuple(action.choices)]
    if isinstance(action.nargs, int):  # exactly N values
        return tuple[(base,) * action.nargs] | None, action.default  # type: ignore[misc]
    if kind == "append" or action.nargs in ("*", "+"):
        return list[base], list(action.default or [])
    if action.default is None:
        return base | None, None
    return base, action.default


def add_option_config_arguments(
    options: OptionArguments, example: str, config_name: str = "options"
) -> None:
    """Call last in ``add_arguments``: ``--config``/``--set`` over the options recorded so far
    (positional and required ones stay command-line only).

    Each option's default moves into a config model (the options then default to None, so
    ``load_option_config`` knows which ones the user typed).
    """
    fields: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for action, kind in options.recorded:
        if not action.option_strings or action.required:
            continue
        fields[action.dest] = _field(action, kind)
        flags[action.dest] = max(action.option_strings, key=len)
        action.default = None
    model = create_model(config_name, __base__=Config, **fields)
    add_config_arguments(options.parser, example)
    options.parser.set_defaults(**{_MODEL: model, _OPTIONS: flags})


def load_option_config(args: argparse.Namespace) -> BaseModel:
    """Fill ``args`` from ``--config``/``--set``/the typed options; returns the config too."""
    model: type[BaseModel] = getattr(args, _MODEL)
    options: dict[str, str] = getattr(args, _OPTIONS)
    flags = {dest: (flag, getattr(args, dest)) for dest, flag in options.items()}
    config = load_node_config(model, args, flags=flags)
    for dest in options:
        setattr(args, dest, getattr(config, dest))
    return config


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def seconds(text: str) -> float:
    """argparse type: a duration, finite and above 0 (``--duration -5`` is a typo, not a
    request for an empty recording)."""
    value = _number(text, float, "a number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} s: a duration must be above 0")
    return value


seconds.config_type = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # type: ignore[attr-defined]


def offset_seconds(text: str) -> float:
    """argparse type: a time into a file, 0 or more seconds."""
    value = _number(text, float, "a number of seconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} s: must be 0 or more")
    return value


offset_seconds.config_type = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # type: ignore[attr-defined]


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (a rate, a speed, a frequency)."""
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


positive_float.config_type = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # type: ignore[attr-defined]


def count(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be 1 or more")
    return value


count.config_type = Annotated[int, Field(ge=1)]  # type: ignore[attr-defined]


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of 0 or more (a seed, a run: 0 = the next free one)."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


non_negative_int.config_type = Annotated[int, Field(ge=0)]  # type: ignore[attr-defined]


def port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    value = int(_number(text, int, "a port number"))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text} is not in 0..65535")
    return value


port.config_type = Annotated[int, Field(ge=0, le=65535)]  # type: ignore[attr-defined]


def restore_sigint() -> None:
    """Ctrl-C (SIGINT) stops a command also when a script started it with SIGINT ignored: a
    background job of a non-interactive shell inherits SIG_IGN, and Python (asyncio included)
    keeps it. Python's default handler raises :class:`KeyboardInterrupt` again. ``eifer`` calls
    this for every command before the command's module is even imported."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM call ``stop`` so the node closes its streams and files cleanly."""

    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
