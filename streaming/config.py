"""TOML configs validated into typed, frozen objects, with errors that name the file and key.

Every node and library part declares its settings as a :class:`Config` subclass (pydantic v2,
unknown keys rejected so a typo never passes silently). ``load_config`` reads a TOML file,
applies command-line overrides (``key.sub=value``, values parsed as TOML literals) and validates.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from streaming.errors import EiferError

__all__ = [
    "Config",
    "ConfigError",
    "apply_overrides",
    "load_config",
    "load_toml",
    "set_dotted",
    "validate",
]


class ConfigError(EiferError, ValueError):
    """A config file or value is missing, malformed or out of range."""


class Config(BaseModel):
    """Base for typed configs: frozen, unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, raising :class:`ConfigError` that names the file on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _parse_value(text: str) -> Any:
    """A TOML literal (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``dotted.key=value`` overrides applied."""
    result: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        set_dotted(result, key.strip(), _parse_value(raw.strip()), f"override {item!r}")
    return result


def set_dotted(data: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted`` ``a.b.c``, creating missing tables;
    ConfigError naming ``where`` (the override or flag) when a parent is a value."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {part!r} is a value, not a table")
        node = child
    node[leaf] = value


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        lines.append(f"  {where}: {err['msg']}{got}")
    return "\n".join(lines)


def validate(cls: type[ConfigT], data: Mapping[str, Any], source: str = "config") -> ConfigT:
    """Validate a mapping into ``cls``; errors name every bad key and the value given."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(
    cls: type[ConfigT],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    section: str | None = None,
) -> ConfigT:
    """Load ``path`` (or defaults when None), take ``section`` if given, apply overrides, validate."""
    data: dict[str, Any] = load_toml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    if section is not None:
        sub = data.get(section, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        data = sub
    return validate(cls, apply_overrides(data, overrides), source)
