"""The per-topic field contract of the bus (streaming/bus/schema.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from streaming.bus.pubsub import Message, decode, encode
from streaming.bus.schema import TOPIC_FIELDS, SchemaError, UnknownTopicError, validate
from streaming.errors import PayloadError

LABELS = ["F1", "F2", "F3"]


def _message(topic: str, fields: dict[str, Any], t: float | None = 1.0) -> Message:
    """Through the real encoder and decoder, as a subscriber sees it."""
    return decode(encode(topic, fields, t=t, frame=None if t is None else 3))


def pipeline_muscle(**changes: Any) -> dict[str, Any]:
    fields = {
        "channels": LABELS,
        "emg_measured": np.array([0.1, np.nan, 0.3], np.float32),
        "emg_measured_uv": np.array([10.0, np.nan, 30.0], np.float32),
        "normalised": True,
        "emg_missing": False,
        "emg_sample_index": 1234.5,
        "emg_from_video": np.zeros(3, np.float32),
        "emg_from_video_uv": np.zeros(3, np.float32),
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def monitor_quality(**changes: Any) -> dict[str, Any]:
    """A ``quality`` message as the pipeline sends it (QualityReport.to_dict of a real report)."""
    from streaming.dsp.quality import QualityMonitor

    rng = np.random.default_rng(0)
    x = 3.0 * rng.standard_normal((2048, 3))
    x[:, 2] = 0.0  # a flat channel
    report = QualityMonitor(LABELS, 4096.0).process(x, t_lsl_end=12.5)
    assert report is not None and report.state("F3") == "bad"
    fields = report.to_dict()
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


VALID = {
    "muscle": pipeline_muscle(),
    "quality": monitor_quality(),
    "expression": {
        "phi_video": np.zeros(55, np.float32),
        "phi_emg": np.zeros(55, np.float32),
        "pose": np.zeros(6, np.float32),
        "face_detected": True,
        "face_box": None,
    },
    "status": {
        "streams": {
            "emg": {
                "connected": True,
                "rate_hz": 4096.0,
                "samples": 10,
                "gaps": 0,
                "lost_samples": 0,
                "bad_samples": 0,
                "reconnects": 0,
                "age_s": None,
                "error": None,
            }
        },
        "latency_ms": {"dsp": {"p50": 0.5, "p99": 1.0, "n": 10}},
        "frames": {"published": 3, "dropped": 0, "duplicates": 0, "emg_missing": 0},
        "backend": "none",
        "feature": "low_latency",
        "emg_group_delay_ms": None,
        "profile": None,
        "errors": [],
        "a_field_added_later": {"anything": [1, 2]},  # producers may add fields
    },
    "instruction": {
        "text": "Please smile",
        "movement": "Smile-Open",
        "repetition": 1,
        "phase": "perform",
        "remaining_s": 2.5,
        "index": 0,
        "total": 9,
    },
}


@pytest.mark.parametrize("topic", sorted(VALID))
def test_what_the_producers_send_is_valid_and_comes_back_normalised(topic: str) -> None:
    message = validate(_message(topic, VALID[topic]))
    assert message.topic == topic and message.t == 1.0 and message.frame == 3
    assert set(message.fields) == set(VALID[topic])
    for value in message.fields.values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float64 and value.ndim == 1


def test_the_schema_covers_exactly_the_contract_topics() -> None:
    assert set(TOPIC_FIELDS) == {
        "expression",
        "muscle",
        "status",
        "instruction",
        "face",
        "quality",
    }


def test_a_quality_message_comes_back_as_the_report_it_was() -> None:
    from streaming.dsp.quality import QualityReport

    fields = monitor_quality()
    message = validate(_message("quality", fields, t=fields["t_lsl"]))
    assert message.fields["states"] == ["good", "good", "bad"]
    assert message.fields["reasons"][2] == ["flat"]
    for vector in message.fields["metrics"].values():
        assert vector.dtype == np.float64 and vector.shape == (3,)
    assert np.isnan(message.fields["metrics"]["noise_db"]).all()  # no neighbours: unknown
    report = QualityReport.from_dict(message.fields)
    assert report.to_dict().keys() == fields.keys()
    assert report.states == ("good", "good", "bad") and report.sample_index == 2048


def test_plain_lists_from_other_clients_become_vectors_nil_as_nan() -> None:
    message = validate(_message("muscle", {"channels": ["A", "B"], "emg_measured": [1, None]}))
    np.testing.assert_array_equal(message.fields["emg_measured"], [1.0, np.nan])


def test_t_and_frame_may_be_nil() -> None:
    message = validate(_message("muscle", pipeline_muscle(), t=None))
    assert message.t is None and message.frame is None


@pytest.mark.parametrize(
    ("topic", "fields", "complaint"),
    [
        ("muscle", pipeline_muscle(emg_measured=...), "muscle lacks emg_measured"),
        ("muscle", pipeline_muscle(channels=...), "muscle lacks channels"),
        ("muscle", pipeline_muscle(channels=3), "muscle.channels must be a list"),
        ("muscle", pipeline_muscle(channels=["F1", 2, "F3"]), r"muscle.channels\[1\]"),
        ("muscle", pipeline_muscle(emg_measured="loud"), "muscle.emg_measured must be"),
        ("muscle", pipeline_muscle(emg_measured=[1.0, "x", 2.0]), r"emg_measured\[1\]"),
        ("muscle", pipeline_muscle(emg_measured=[True, 1.0, 2.0]), r"emg_measured\[0\]"),
        ("muscle", pipeline_muscle(emg_measured=np.zeros((3, 1))), "1-D numeric array"),
        ("muscle", pipeline_muscle(emg_measured=np.zeros(3, bool)), "1-D numeric array"),
        ("muscle", pipeline_muscle(emg_measured=np.zeros(2)), "2 values for 3 channels"),
        ("muscle", pipeline_muscle(emg_from_video_uv=np.zeros(4)), "4 values for 3 channels"),
        ("muscle", pipeline_muscle(normalised="yes"), "muscle.normalised must be true or false"),
        ("muscle", pipeline_muscle(emg_missing=None), "emg_missing must be true or false"),
        ("muscle", pipeline_muscle(emg_sample_index="x"), "emg_sample_index must be a number"),
        ("expression", {"phi_video": {"a": 1}}, "expression.phi_video must be"),
        ("expression", {"face_box": "here"}, "face_box must be"),
        ("status", {"streams": {"emg": None}}, "status.streams.emg must be a map"),
        ("status", {"streams": {"emg": {"connected": 1}}}, "connected must be true or false"),
        ("status", {"streams": 5}, "status.streams must be a map"),
        ("status", {"latency_ms": {"dsp": {"p50": "fast"}}}, "p50 must be a number"),
        ("status", {"frames": {"dropped": [1]}}, "frames.dropped must be a number"),
        ("status", {"errors": "disk full"}, "errors must be a list"),
        ("status", {"errors": [None]}, r"errors\[0\] must be a string"),
        ("status", {"backend": 3}, "backend must be a string"),
        ("instruction", {"text": 42}, "instruction.text must be a string"),
        ("instruction", {"movement": "Smile"}, "instruction lacks text"),
        ("instruction", {"text": "x", "remaining_s": "soon"}, "remaining_s must be a number"),
        ("instruction", {"text": "x", "index": 1.5}, "index must be an integer"),
        ("instruction", {"text": "x", "total": True}, "total must be an integer"),
        ("instruction", {"text": "x", "phase": ["rest"]}, "phase must be a string"),
        ("quality", monitor_quality(states=["good", "ok", "bad"]), r"states\[1\] must be"),
        ("quality", monitor_quality(states=["good", "bad"]), "states has 2 values for 3"),
        ("quality", monitor_quality(reasons=[[], [], "flat"]), r"reasons\[2\] must be a list"),
        ("quality", monitor_quality(reasons=[[], [1], []]), r"reasons\[1\]\[0\] must be a str"),
        ("quality", monitor_quality(reasons=[[], []]), "reasons has 2 values for 3"),
        ("quality", monitor_quality(metrics={"rms_uv": [1.0, 2.0]}), "rms_uv has 2 values"),
        ("quality", monitor_quality(metrics={"rms_uv": "high"}), "rms_uv must be a numeric"),
        ("quality", monitor_quality(bridge_partner=["", ""]), "bridge_partner has 2 values"),
        ("quality", monitor_quality(states=...), "quality lacks states"),
        ("quality", monitor_quality(sample_index=1.5), "sample_index must be an integer"),
        ("quality", monitor_quality(movement=3), "movement must be a string"),
        # found by the display fuzz test: an infinite scalar reached the page as null
        ("quality", monitor_quality(mains_hz=math.inf), "mains_hz must be a finite number"),
        ("quality", monitor_quality(mains_hz=math.nan), "mains_hz must be a finite number"),
        ("quality", monitor_quality(mains_hz=0.0), r"mains_hz must be a mains frequency in \[1,"),
        ("quality", monitor_quality(mains_hz=1e-42), r"mains_hz must be a mains frequency in \[1,"),
        ("quality", monitor_quality(mains_hz="50"), "mains_hz must be a number"),
        ("muscle", pipeline_muscle(emg_read_offset_ms=-math.inf), "must be a finite number"),
    ],
)
def test_fields_against_the_contract_are_named_schema_errors(topic, fields, complaint) -> None:
    with pytest.raises(SchemaError, match=complaint) as caught:
        validate(_message(topic, fields))
    assert isinstance(caught.value, PayloadError)  # one family: consumers catch PayloadError


@pytest.mark.parametrize("topic", ["hello", "display", "feedback", "muscles", ""])
def test_topics_outside_the_contract_are_unknown(topic: str) -> None:
    with pytest.raises(UnknownTopicError, match="not part of the bus contract"):
        validate(_message(topic, {"labels": 3}))
