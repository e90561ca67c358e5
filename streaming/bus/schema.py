"""The fields each bus topic carries, checked in one place (DESIGN.md "ZeroMQ bus"; README
"Contract additions").

:func:`streaming.bus.pubsub.decode` checks the envelope and the arrays; :func:`validate` checks that
a topic's fields are the contract's: names, types, and that the per-channel vectors of ``muscle``
and ``quality`` match their channel list. Consumers treat the bus as untrusted: a message that fails is counted and
dropped, never cached or forwarded, and an unknown topic is ignored (:class:`UnknownTopicError`).
Fields not named here pass unchecked, so producers may add fields without breaking readers.

:func:`validate` returns a normalised copy: every vector is a 1-D float64 array (NaN where the
sender had NaN or nil), every number a float or int, so consumers need no type checks of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from streaming.bus.jpeg import JpegError, jpeg_size
from streaming.bus.pubsub import TOPICS, Message
from streaming.dsp.quality_report import MAINS_HZ_RANGE, STATES
from streaming.errors import PayloadError

__all__ = [
    "FACE_IMAGE_MAX_BYTES",
    "FACE_IMAGE_MAX_SIDE_PX",
    "TOPIC_FIELDS",
    "SchemaError",
    "UnknownTopicError",
    "validate",
]


class SchemaError(PayloadError):
    """A decodable bus message whose fields do not follow its topic's contract."""


class UnknownTopicError(SchemaError):
    """A topic the contract does not define; consumers ignore these."""


Check = Callable[[Any, str], Any]

# ``face``: a preview, not a video stream (streaming.pipeline.face_preview): 1280 px and 1 MiB bound
# what a consumer (a browser decoding it) may be made to hold per picture
FACE_IMAGE_MAX_SIDE_PX = 1280
FACE_IMAGE_MAX_BYTES = 1 << 20


def _fail(where: str, wanted: str, value: Any) -> SchemaError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return SchemaError(f"{where} must be {wanted}, got {shown}")


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise _fail(where, "a number", value)
    return value.item() if isinstance(value, np.generic) else value


def _finite(value: Any, where: str) -> float | int:
    """A finite number: a scalar field a consumer may not read as nil (strict JSON has no
    infinity, so the display would pass it on as null)."""
    number = _number(value, where)
    if not math.isfinite(number):
        raise _fail(where, "a finite number", value)
    return number


def _mains_hz(value: Any, where: str) -> float | int:
    """A power-line frequency within :data:`MAINS_HZ_RANGE`."""
    number = _finite(value, where)
    low, high = MAINS_HZ_RANGE
    if not low <= number <= high:
        raise _fail(where, f"a mains frequency in [{low:g}, {high:g}] Hz", value)
    return number


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _fail(where, "an integer", value)
    return int(value)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise _fail(where, "true or false", value)
    return bool(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return value


def _vector(value: Any, where: str) -> np.ndarray:
    """A 1-D numeric array, or a list of numbers and nils (nil = NaN), as float64."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iuf":
            raise _fail(where, "a 1-D numeric array", f"{value.dtype} array of shape {value.shape}")
        return value.astype(np.float64)
    if isinstance(value, list):
        numbers = [
            math.nan if v is None else _number(v, f"{where}[{i}]") for i, v in enumerate(value)
        ]
        return np.asarray(numbers, dtype=np.float64).reshape(len(numbers))
    raise _fail(where, "a numeric vector", value)


def _points(value: Any, where: str) -> np.ndarray:
    """A (N, 2) or (N, 3) numeric array of points (e.g. face landmarks in frame pixels); also
    a list of such rows (nil = NaN), as a client without numpy (or the page's JSON) sends it."""
    if isinstance(value, list):
        rows = [_vector(row, f"{where}[{i}]") for i, row in enumerate(value)]
        if rows and {len(row) for row in rows} in ({2}, {3}):
            return np.stack(rows)
        if not rows:
            return np.zeros((0, 2))
        raise _fail(where, "a list of [x, y] or [x, y, z] points", value)
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.shape[1] not in (2, 3):
        shown = (
            f"{value.dtype} array of shape {value.shape}"
            if isinstance(value, np.ndarray)
            else value
        )
        raise _fail(where, "an (N, 2) or (N, 3) numeric array", shown)
    if value.dtype.kind not in "iuf":
        raise _fail(where, "a numeric array", f"{value.dtype} array")
    return value.astype(np.float64)


def _labels(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise _fail(where, "a list of channel labels", value)
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _texts(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise _fail(where, "a list of strings", value)
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _reason_lists(value: Any, where: str) -> list[list[str]]:
    """Per channel a list of reasons (``quality.reasons``)."""
    if not isinstance(value, list):
        raise _fail(where, "a list of reason lists, one per channel", value)
    return [_texts(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _list_of(check: Check) -> Check:
    def list_of(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(where, "a list", value)
        return [check(v, f"{where}[{i}]") for i, v in enumerate(value)]

    return list_of


def _choice(*allowed: str) -> Check:
    def choice(value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _fail(where, " or ".join(repr(a) for a in allowed), value)
        return str(value)

    return choice


def _nullable(check: Check) -> Check:
    def nullable(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)

    return nullable


def _record(fields: Mapping[str, Check], required: frozenset[str] = frozenset()) -> Check:
    """A map whose named fields pass their checks (unnamed ones pass unchecked)."""

    def record(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(where, "a map", value)
        missing = sorted(required - value.keys())
        if missing:
            raise SchemaError(f"{where} lacks {', '.join(missing)}")
        return {
            key: fields[key](item, f"{where}.{key}") if key in fields else item
            for key, item in value.items()
        }

    return record


def _map_of(check: Check) -> Check:
    def map_of(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(where, "a map", value)
        return {key: check(item, f"{where}.{key}") for key, item in value.items()}

    return map_of


def _size(most: int) -> Check:
    """``[width, height]`` in pixels, each 1..``most``."""

    def size(value: Any, where: str) -> list[int]:
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(where, "[width, height]", value)
        sides = [_integer(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not all(1 <= side <= most for side in sides):
            raise _fail(where, f"sides of 1..{most} pixels", value)
        return sides

    return size


def _jpeg(most_bytes: int, most_side: int) -> Check:
    """JPEG bytes of at most ``most_bytes``, whose frame header gives sides of at most
    ``most_side`` pixels (checked without decoding: :func:`streaming.bus.jpeg.jpeg_size`)."""

    def jpeg(value: Any, where: str) -> bytes:
        if not isinstance(value, bytes):
            raise _fail(where, "JPEG bytes", type(value).__name__)
        if len(value) > most_bytes:
            raise SchemaError(f"{where} has {len(value)} bytes, more than {most_bytes}")
        try:
            width, height = jpeg_size(value)
        except JpegError as exc:
            raise SchemaError(f"{where}: {exc}") from None
        if width > most_side or height > most_side:
            raise SchemaError(f"{where} is {width} x {height} pixels, larger than {most_side}")
        return value

    return jpeg


def _scale(value: Any, where: str) -> float:
    number = _number(value, where)
    if not (math.isfinite(number) and 0 < number <= 16):
        raise _fail(where, "a factor in (0, 16]", value)
    return float(number)


def _box(value: Any, where: str) -> np.ndarray:
    box = _vector(value, where)
    if box.shape != (4,):
        raise _fail(where, "4 numbers x, y, w, h", f"{box.shape[0]} values")
    return box


_count = _nullable(_number)  # counters and rates: numbers, nil where unknown

_STREAM = _record(
    {
        "connected": _boolean,
        "rate_hz": _count,
        "samples": _count,
        "gaps": _count,
        "lost_samples": _count,
        "bad_samples": _count,
        "reconnects": _count,
        "age_s": _count,
        "error": _nullable(_text),
    }
)
_SYNC = _record(
    {
        "align": _choice("delay", "latest"),
        "emg_read_offset_ms": _count,
        "emg_lag_ms": _count,
        "max_wait_ms": _count,
    }
)
_LATENCY = _record({"p50": _count, "p99": _count, "n": _count})

# topic -> (field checks, required fields). Vectors of ``muscle`` also match ``channels``.
TOPIC_FIELDS: dict[str, tuple[dict[str, Check], frozenset[str]]] = {
    "muscle": (
        {
            "channels": _labels,
            "emg_measured": _vector,
            "emg_measured_uv": _vector,
            "normalised": _boolean,
            "emg_missing": _boolean,
            "emg_sample_index": _nullable(_number),
            "align": _choice("delay", "latest"),
            "emg_read_offset_ms": _finite,
            "emg_from_video": _vector,
            "emg_from_video_uv": _vector,
        },
        frozenset({"channels", "emg_measured"}),
    ),
    "expression": (
        {
            "phi_video": _vector,
            "phi_emg": _vector,
            "pose": _vector,
            "face_detected": _boolean,
            "face_box": _nullable(_vector),
            "face_detector": _text,
            "landmarks": _nullable(_points),
        },
        frozenset(),
    ),
    "status": (
        {
            "streams": _map_of(_STREAM),
            "latency_ms": _map_of(_LATENCY),
            "frames": _map_of(_count),
            "backend": _nullable(_text),
            "feature": _nullable(_text),
            "emg_group_delay_ms": _count,
            "sync": _SYNC,
            "profile": _nullable(_text),
            "errors": _texts,
        },
        frozenset(),
    ),
    "instruction": (
        {
            "text": _text,
            "movement": _nullable(_text),
            "repetition": _nullable(_integer),
            "phase": _nullable(_text),
            "remaining_s": _count,
            "index": _nullable(_integer),
            "total": _nullable(_integer),
        },
        frozenset({"text"}),
    ),
    "face": (
        {
            "image": _jpeg(FACE_IMAGE_MAX_BYTES, FACE_IMAGE_MAX_SIDE_PX),
            "image_size": _size(FACE_IMAGE_MAX_SIDE_PX),
            "source_size": _size(1 << 16),
            "scale": _scale,
            "face_detected": _boolean,
            "face_box": _nullable(_box),
            "landmarks": _nullable(_points),
            "crop": _nullable(_jpeg(FACE_IMAGE_MAX_BYTES, FACE_IMAGE_MAX_SIDE_PX)),
            "crop_size": _nullable(_size(FACE_IMAGE_MAX_SIDE_PX)),
        },
        frozenset({"image", "image_size", "scale", "face_detected"}),
    ),
    # per-channel electrode quality (streaming.dsp.quality_report.QualityReport.to_dict)
    "quality": (
        {
            "t_lsl": _nullable(_number),
            "sample_index": _integer,
            "channels": _labels,
            "states": _list_of(_choice(*STATES)),
            "reasons": _reason_lists,
            "metrics": _map_of(_vector),
            "mains_hz": _mains_hz,
            "movement": _nullable(_text),
            "bridge_partner": _labels,
        },
        frozenset({"sample_index", "channels", "states", "reasons", "metrics", "mains_hz"}),
    ),
}
assert set(TOPIC_FIELDS) == set(TOPICS)

_MUSCLE_VECTORS = ("emg_measured", "emg_measured_uv", "emg_from_video", "emg_from_video_uv")


def validate(message: Message) -> Message:
    """``message`` with its fields checked and normalised against its topic's contract.

    Raises :class:`UnknownTopicError` for a topic the contract does not define and
    :class:`SchemaError` (naming the topic and field) for fields that do not follow it.
    """
    spec = TOPIC_FIELDS.get(message.topic)
    if spec is None:
        raise UnknownTopicError(f"topic {message.topic[:40]!r} is not part of the bus contract")
    checks, required = spec
    fields = _record(checks, required)(message.fields, message.topic)
    if message.topic == "face":
        _check_face(fields)
    if message.topic == "quality":
        _check_quality(fields)
    if message.topic == "muscle":
        n = len(fields["channels"])
        for key in _MUSCLE_VECTORS:
            if key in fields and fields[key].shape[0] != n:
                raise SchemaError(
                    f"muscle.{key} has {fields[key].shape[0]} values for {n} channels"
                )
    return replace(message, fields=fields)


def _check_face(fields: dict[str, Any]) -> None:
    """The sizes a ``face`` message claims are its pictures' own (read from their headers)."""
    for picture, size in (("image", "image_size"), ("crop", "crop_size")):
        if fields.get(picture) is None:
            continue
        actual = list(jpeg_size(fields[picture]))
        if fields.get(size) != actual:
            raise SchemaError(
                f"face.{size} {fields.get(size)} is not the JPEG's {actual[0]} x {actual[1]}"
            )


def _check_quality(fields: dict[str, Any]) -> None:
    """Every per-channel list and metric vector of a ``quality`` message has one entry per
    channel."""
    n = len(fields["channels"])
    per_channel = [(key, fields.get(key)) for key in ("states", "reasons", "bridge_partner")]
    per_channel += [(f"metrics.{k}", v) for k, v in fields["metrics"].items()]
    for key, value in per_channel:
        if value is not None and len(value) != n:
            raise SchemaError(f"quality.{key} has {len(value)} values for {n} channels")
