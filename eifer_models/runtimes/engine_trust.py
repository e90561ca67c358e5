"""Trust in TensorRT plans: load only engines that were built on this machine.

A serialized TensorRT engine is not data: it can carry plugin code and it is only valid on the
GPU and TensorRT version it was built for. A plan that arrived inside a model bundle (copied from
another lab, downloaded with it) must therefore never be deserialized; it is rebuilt from the
bundle's ONNX graph instead, which TensorRT parses as data.

Every plan this project builds gets a signature in its sidecar: an HMAC-SHA256 (RFC 2104) over
the plan's SHA-256 and the sidecar's other fields, keyed with a secret that never leaves this
machine (``~/.config/eifer/engine-signing.key``, mode 0600, created on first use; the
``EIFER_ENGINE_KEY`` environment variable names another file). A plan without a valid signature
(built elsewhere, edited, or with an edited sidecar) is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["KEY_ENV", "SIGNATURE_FIELD", "machine_key", "sign_engine", "signature_problem"]

KEY_ENV = "EIFER_ENGINE_KEY"
SIGNATURE_FIELD = "signature"
_KEY_BYTES = 32


def _key_path() -> Path:
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "eifer" / "engine-signing.key"


def machine_key(path: str | Path | None = None) -> bytes:
    """This machine's engine-signing secret (created with mode 0600 when absent)."""
    path = Path(path) if path is not None else _key_path()
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(_KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
    if len(key) < _KEY_BYTES:
        raise ValueError(f"{path}: engine-signing key shorter than {_KEY_BYTES} bytes")
    return key


def _message(plan: bytes, meta: Mapping[str, Any]) -> bytes:
    fields = {k: v for k, v in meta.items() if k != SIGNATURE_FIELD}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(plan).hexdigest().encode() + b"\n" + canonical.encode()


def sign_engine(plan: bytes, meta: Mapping[str, Any], key: bytes) -> str:
    """Hex HMAC-SHA256 of ``plan`` and its sidecar fields (the signature field excluded)."""
    return hmac.new(key, _message(plan, meta), hashlib.sha256).hexdigest()


def signature_problem(plan: bytes, meta: Mapping[str, Any], key: bytes) -> str | None:
    """None when ``meta`` carries this machine's valid signature of ``plan``, else why not."""
    claimed = meta.get(SIGNATURE_FIELD)
    if not isinstance(claimed, str):
        return "engine has no signature from this machine (built elsewhere or by an old version)"
    if not hmac.compare_digest(claimed, sign_engine(plan, meta, key)):
        return "engine signature does not verify (built on another machine, or plan/sidecar edited)"
    return None
