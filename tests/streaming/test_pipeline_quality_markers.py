"""The ``silent`` check live (issue 21): a marker stream as the protocol node sends it, the EMG
simulator node performing what it instructs with F19 (right zygomaticus) off its muscle
(``misplaced``), and the real pipeline reading the same markers: in each Smile-Open the ``quality``
topic names F19 ``check`` / ``silent`` within a few seconds of the movement's start; F20 (the
left zygomaticus, which smiles) is never silent and no channel is ever ``bad``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from streaming.acquisition.lsl_io import ChunkOutlet, StreamSelector, find_stream, stream_info
from streaming.bus.pubsub import Publisher, Subscriber
from streaming.bus.schema import validate as validate_message
from streaming.config import validate
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from tests.emg.simulator_node import simulator_node

HOLD_S, PAUSE_S = 4.0, 3.0  # as configs/protocols/mimics_and_muscles.toml: hold 4 s, pause 3 s


@pytest.fixture
def markers_and_node(unique_name: str) -> Iterator[tuple[str, Any]]:
    """A ``Markers`` outlet named ``<name>-Markers`` and the simulator node following it."""
    info = stream_info(f"{unique_name}-Markers", "Markers", 1, 0.0, "string", unique_name + "-m")
    outlet = ChunkOutlet(info)
    try:
        with simulator_node(
            unique_name, '{channel="F19", kind="misplaced"}', 'simulator.script.kind="markers"',
            f'simulator.script.markers_stream="{unique_name}-Markers"',
        ):  # fmt: skip
            yield unique_name, outlet
    finally:
        outlet.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_channel_off_its_muscle_is_named_silent_live(markers_and_node) -> None:
    import pylsl

    name, outlet = markers_and_node
    find_stream(StreamSelector(name=name), timeout_s=60)
    assert outlet.wait_for_consumers(60), "the simulator does not follow the markers"
    config = validate(
        PipelineConfig,
        {
            "emg": {"name": name, "type": "EMG", "reconnect_timeout_s": 1.0},
            "video": {"enabled": False},
            "output": {"lsl_name": name + "-EIFER", "lsl_predictions": False},
            "quality": {"markers_stream": f"{name}-Markers", "lsl_stream": False},
        },
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    pipeline = Pipeline(config, publisher=publisher)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    subscriber = Subscriber(publisher.address, ["quality"])
    messages: list[Any] = []
    starts: list[float] = []

    def receive_until(t_end: float) -> None:
        while pylsl.local_clock() < t_end:
            message = subscriber.receive(0.1)
            if message is not None and message.topic == "quality":
                messages.append(validate_message(message))

    try:
        assert pipeline.quality is not None and pipeline.quality.markers is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pipeline.quality.markers.connected:
            time.sleep(0.1)
        assert pipeline.quality.markers.connected, "the pipeline does not read the markers"
        receive_until(pylsl.local_clock() + 6.0)  # rest: the baseline
        for rep in (1, 2):
            t = pylsl.local_clock()
            outlet.push_stamped([[f"start:Smile-Open:{rep}"]], np.array([t]))
            starts.append(t)
            receive_until(t + HOLD_S)
            outlet.push_stamped([[f"stop:Smile-Open:{rep}"]], np.array([t + HOLD_S]))
            receive_until(t + HOLD_S + PAUSE_S)
    finally:
        pipeline.stop()
        thread.join(10)
        subscriber.close()
        publisher.close()
    assert pipeline.quality.movements_placed == 4
    t = np.array([m.t for m in messages])
    fields = [m.fields for m in messages]
    f19 = fields[0]["channels"].index("F19")
    silent = np.array(["silent" in f["reasons"][f19] for f in fields])
    moving = np.array([f["movement"] == "Smile-Open" for f in fields])
    assert not silent[t < starts[0]].any()
    for start in starts:  # each smile announced and F19 named silent in it
        assert moving[(t > start + 0.6) & (t < start + HOLD_S)].all()
        flagged = t[silent & (t >= start) & (t <= start + HOLD_S + 0.6)]
        assert flagged.size, f"F19 not named silent in the smile at {start:.1f}"
        assert flagged[0] - start <= 3.0, f"F19 named silent {flagged[0] - start:.1f} s late"
    assert all(f["states"][f19] == "check" for f in np.array(fields)[silent])
    f20 = fields[0]["channels"].index("F20")
    assert not any("silent" in f["reasons"][f20] for f in fields)
    bad = {c for f in fields for c, s in zip(f["channels"], f["states"], strict=True) if s == "bad"}
    assert not bad, f"channels bad: {bad}"
    others = {c for f in fields for c, s in zip(f["channels"], f["states"], strict=True)
              if s != "good" and c != "F19"}  # fmt: skip
    assert not others, f"clean channels flagged: {others}"
    print("F19 silent after", [round(float(t[silent & (t >= s)][0] - s), 2) for s in starts], "s")
