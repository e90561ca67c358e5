"""Shipped TOML configs: electrode schemes, protocols, node and pipeline setups."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_path(*parts: str) -> Path:
    """Path of a shipped config file, e.g. ``config_path("electrodes", "fridlund.toml")``."""
    path = CONFIG_DIR.joinpath(*parts)
    if not path.is_file():
        available = sorted(str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob("*.toml"))
        raise FileNotFoundError(f"no shipped config {'/'.join(parts)!r}; available: {available}")
    return path
