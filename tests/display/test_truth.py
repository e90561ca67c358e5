"""The display's truth (nodes/display/truth.py): real ``VideoTruth`` and ``EMGTruth`` outlets in a
child process, rows paired with bus messages by time, channels with their muscle and side."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nodes.display.server import ServerThread
from streaming.acquisition.electrodes import load_scheme
from streaming.bus.pubsub import Message
from streaming.pipeline.face_preview import PreviewJob, encode_face_fields

RATE_HZ = 30.0
N_ROWS = 90

# Both truth streams as the sources publish them (labels from the project's own helpers): row k
# of VideoTruth stamped t0 + k / 30 with phi_j = k / 100 + j / 1000 and face box (100 + k, 50,
# 80, 90); EMGTruth per 32-sample chunk with activation of muscle i = i / 100 + 0.5.
CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np, pylsl
    from nodes.emg import load_node_config
    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info
    from simulation.emg import EmgSimulator
    from simulation.participant.truth import truth_labels, truth_stream_info
    name, t0, rate, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    muscles = EmgSimulator(load_node_config().simulator).muscle_labels
    labels = truth_labels(muscles)
    video = ChunkOutlet(truth_stream_info(name + "-video", rate, name + "-v", muscles,
                                          of_stream="cam", extra={}), max_buffered_s=30)
    emg = ChunkOutlet(stream_info(name + "-emg", "EMGTruth", 1 + len(muscles), 128.0, "double64",
                                  name + "-e", channel_labels=["sample_index", *muscles]),
                      max_buffered_s=30)
    where = {label: i for i, label in enumerate(labels)}
    phi = [i for label, i in where.items() if label.startswith("phi_")]
    for outlet in (video, emg):  # rows pushed before an inlet connects never reach it
        outlet._outlet.wait_for_consumers(120)
    time.sleep(1.0)
    for k in range(n):
        row = np.zeros(len(labels), np.float32)
        row[phi] = k / 100 + np.arange(len(phi)) / 1000
        row[[where[f"face_{a}_px"] for a in "xywh"]] = (100 + k, 50, 80, 90)
        for i, m in enumerate(muscles):
            row[where["act_" + m]] = 0.2
        video.push(row[None, :], t0 + k / rate)
    for c in range(int(n / rate * 128)):
        emg.push(np.r_[32 * c, np.arange(len(muscles)) / 100 + 0.5][None, :], t0 + c / 128)
    time.sleep(60)
    """
)


@pytest.fixture
def truth_display(unique_name: str, display_config):
    import pylsl

    t0 = pylsl.local_clock() - 10.0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, unique_name, repr(t0), str(RATE_HZ), str(N_ROWS)]
    )
    config = display_config(
        "tcp://127.0.0.1:1", video_truth=f"{unique_name}-video", emg_truth=f"{unique_name}-emg"
    )
    server = ServerThread(config)
    server.start()
    try:
        deadline = time.monotonic() + 120
        truth = server.server.truth
        while time.monotonic() < deadline:
            last_video = truth.video.nearest(t0 + (N_ROWS - 1) / RATE_HZ, 1e-3)
            last_emg = truth.emg.nearest(t0 + (N_ROWS - 2) / RATE_HZ, 0.01)
            if last_video is not None and last_emg is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"truth rows never arrived: {server.server.health()['truth']}")
        yield server, t0
    finally:
        server.stop()
        child.terminate()
        child.wait(10)


def _page(server: ServerThread, topic: str, fields: dict, t: float) -> dict:
    out = server.call(lambda: server.server.accept(Message(topic, fields, t, 0)))
    return json.loads(out[0][1])["fields"]


def test_truth_is_paired_with_messages_by_the_frame_time(truth_display) -> None:
    server, t0 = truth_display
    k = 40
    t = t0 + k / RATE_HZ + 0.004  # the same frame, within the 10 ms pairing window
    phi = _page(server, "expression", {"phi_video": np.zeros(55)}, t)["phi_truth"]
    np.testing.assert_allclose(phi, k / 100 + np.arange(55) / 1000, atol=1e-5)
    face = encode_face_fields(PreviewJob(t, k, np.zeros((360, 640, 3), np.uint8)))
    box = _page(server, "face", face, t)["truth_face_box"]
    np.testing.assert_allclose(box, np.array([100 + k, 50, 80, 90]) * 0.5)  # JPEG pixels
    # the muscle message's channels get their muscle's true activation (VideoTruth's act_*)
    labels = load_scheme("fridlund").labels
    muscle = {"channels": labels, "emg_measured": np.zeros(22)}
    np.testing.assert_allclose(_page(server, "muscle", muscle, t)["truth_activation"], 0.2)
    # far from every truth row (or, as in a lab, without truth streams): nothing is added
    far = t0 + 1000.0
    assert "phi_truth" not in _page(server, "expression", {"phi_video": np.zeros(55)}, far)
    assert "truth_face_box" not in _page(server, "face", face, far)
    assert server.call(server.server.health)["truth"]["video"]["connected"] is True


def test_without_video_truth_each_channel_gets_its_muscle_and_side_from_the_emg_truth(
    truth_display,
) -> None:
    server, t0 = truth_display
    server.server.truth.video = None  # only the EMG simulator's truth, as with another camera
    from nodes.emg import load_node_config
    from simulation.emg import EmgSimulator

    muscles = EmgSimulator(load_node_config().simulator).muscle_labels
    scheme = load_scheme("fridlund")
    channels = ["F3", "F1", "F2", "X9"]  # any order; a label the scheme lacks gets NaN
    t = t0 + 1.0
    got = _page(server, "muscle", {"channels": channels, "emg_measured": np.zeros(4)}, t)
    expected = []
    for label in channels[:3]:
        i = scheme.labels.index(label)
        name = f"{scheme.muscles[i]}_{scheme.sides[i][0]}"  # F1: right frontalis medialis
        expected.append(muscles.index(name) / 100 + 0.5)
    np.testing.assert_allclose(got["truth_activation"][:3], expected, atol=1e-6)
    assert got["truth_activation"][3] is None  # NaN -> JSON null
    assert scheme.sides[scheme.labels.index("F1")] == "right"
