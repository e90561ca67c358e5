"""The pipeline's electrode quality over real LSL and a real bus (issue 21 item 2): the EMG
simulator node with a ``flat`` fault on F3 -> ``quality`` messages that name F3 bad within 2 s of
the fault's start (the truth stream's ``t0_lsl`` + ``start_s``) and the ``<EMG>-quality`` LSL
stream with the same states; ``quality.enabled = false`` publishes neither."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, desc_to_dict, find_stream
from streaming.bus.pubsub import Message, Publisher, Subscriber
from streaming.bus.schema import validate as validate_message
from streaming.config import validate
from streaming.dsp.quality_codes import STREAM_TYPE, decode_timeline
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from tests.emg.simulator_node import simulator_node

FAULT_START_S = 4.0


@pytest.fixture
def flat_f3_node(unique_name: str) -> Iterator[str]:
    """The EMG simulator node (22 Fridlund channels, 4096 Hz) with F3 flat from 4 s on."""
    with simulator_node(unique_name, f'{{channel="F3", kind="flat", start_s={FAULT_START_S}}}'):
        yield unique_name


def _run_pipeline(name: str, enabled: bool = True) -> tuple[Pipeline, Publisher, threading.Thread]:
    config = validate(
        PipelineConfig,
        {
            "emg": {"name": name, "type": "EMG", "reconnect_timeout_s": 1.0},
            "video": {"enabled": False},
            "output": {"lsl_name": name + "-EIFER", "lsl_predictions": False},
            "quality": {"enabled": enabled},
        },
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    pipeline = Pipeline(config, publisher=publisher)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    return pipeline, publisher, thread


def _collect(subscriber: Subscriber, topic: str, until: Any, timeout_s: float) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = subscriber.receive(0.2)
        if message is not None and message.topic == topic:
            got.append(validate_message(message))
            if until(got):
                break
    return got


@pytest.mark.timeout(120)
def test_a_flat_electrode_is_named_bad_on_the_bus_and_in_the_quality_stream(flat_f3_node):
    name = flat_f3_node
    truth = desc_to_dict(find_stream(StreamSelector(name=f"{name}-truth"), timeout_s=30))
    fault_t = float(truth["t0_lsl"]) + FAULT_START_S
    pipeline, publisher, thread = _run_pipeline(name)
    subscriber = Subscriber(publisher.address, ["quality"])
    quality_info = find_stream(StreamSelector(name=f"{name}-quality"), timeout_s=30)
    inlet = ChunkInlet(quality_info, clock_sync=False)
    try:
        inlet.open(10)
        messages = _collect(
            subscriber,
            "quality",
            lambda got: got[-1].t is not None and got[-1].t > fault_t + 3.0,
            timeout_s=40,
        )
        rows, stamps = inlet.pull(timeout_s=1.0)
    finally:
        inlet.close()
        pipeline.stop()
        thread.join(10)
        subscriber.close()
        publisher.close()
    assert messages, "no quality message"
    f = messages[-1].fields
    assert f["channels"] == [f"F{i}" for i in range(1, 23)] and messages[-1].frame is None
    t = np.array([m.t for m in messages])
    assert np.all(np.diff(t) == pytest.approx(0.5, abs=0.01))  # twice a second of EMG
    bad_f3 = np.array([m.fields["states"][2] == "bad" and "flat" in m.fields["reasons"][2]
                       for m in messages])  # fmt: skip
    assert not bad_f3[t < fault_t].any()
    first = t[bad_f3 & (t >= fault_t)]
    assert first.size and first[0] - fault_t <= 2.0, f"F3 flagged {first[:1] - fault_t} s late"
    assert bad_f3[t >= first[0]].all()
    others = [(m.t, c) for m in messages for c, s in zip(m.fields["channels"], m.fields["states"],
              strict=True) if s == "bad" and c != "F3"]  # fmt: skip
    assert not others, f"clean channels bad: {others[:5]}"
    # the same timeline as LSL samples, stamped with the reports' times
    desc = desc_to_dict(quality_info)
    assert quality_info.type() == STREAM_TYPE and desc["of_stream"] == name
    assert len(stamps) >= 4
    timeline = decode_timeline(stamps, rows, f["channels"], float(desc["update_s"]))
    by_t = {round(m.t, 4): m.fields["states"] for m in messages}
    matched = [(i, by_t[round(s, 4)]) for i, s in enumerate(stamps) if round(s, 4) in by_t]
    assert len(matched) >= 4
    for i, states in matched:
        assert [("good", "check", "bad")[k] for k in timeline.levels[i]] == states
    late = timeline.times > first[0]
    assert np.all(timeline.levels[late, 2] == 2)
    assert timeline.reasons(int(np.flatnonzero(late)[0]), 2) == ("flat",)
    assert pipeline.status()["frames"]["quality_reports"] == pytest.approx(len(messages), abs=3)


@pytest.mark.timeout(60)
def test_quality_off_publishes_no_quality(flat_f3_node):
    pipeline, publisher, thread = _run_pipeline(flat_f3_node, enabled=False)
    subscriber = Subscriber(publisher.address)
    topics: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and topics.get("muscle", 0) < 90:
            message = subscriber.receive(0.2)
            if message is not None:
                topics[message.topic] = topics.get(message.topic, 0) + 1
    finally:
        pipeline.stop()
        thread.join(10)
        subscriber.close()
        publisher.close()
    assert topics.get("muscle", 0) >= 90  # 3 s of frames ...
    assert "quality" not in topics and pipeline.quality is None  # ... and no quality topic
    assert pipeline.status()["frames"]["quality_reports"] == 0
