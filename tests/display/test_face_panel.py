"""The live-face panel: the camera image with the face box, landmarks and crop, the truth beside
the live data where a source has one, hostile ``face`` messages, and the screenshot tool.

Real parts throughout: a real bus Publisher (or a raw ZeroMQ socket for hostile bytes), a real
display server, a real LSL ``VideoTruth`` outlet in a child process, headless Chromium.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from nodes.display.server import ServerThread
from streaming.acquisition.electrodes import load_scheme
from streaming.bus.jpeg import encode_jpeg
from streaming.bus.pubsub import Publisher, encode
from streaming.pipeline.face_preview import PreviewJob, encode_face_fields

pytestmark = pytest.mark.browser

FRAME = cv2.resize(astronaut(), (1280, 720), interpolation=cv2.INTER_AREA)  # a real face photo
BOX = np.array([560.0, 60.0, 220.0, 260.0], np.float32)  # x, y, w, h (frame pixels)
TRUE_BOX = np.array([600.0, 120.0, 150.0, 180.0], np.float32)
CROP = cv2.resize(astronaut()[0:260, 120:380], (224, 224))
LABELS = load_scheme("fridlund").labels
RATE_HZ = 30.0


def _face_fields(detected: bool = True) -> dict[str, Any]:
    landmarks = BOX[:2] + np.random.default_rng(0).random((478, 2)).astype(np.float32) * BOX[2:]
    return encode_face_fields(
        PreviewJob(0.0, 0, FRAME, detected, BOX, landmarks.astype(np.float32), CROP)
    )


def _stats(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.eiferStats))")


def _pixel(page, x: float, y: float) -> list[int]:
    """RGBA of the face canvas at CSS pixel (x, y)."""
    return page.evaluate(
        """([x, y]) => { const c = document.getElementById('face');
        const d = window.devicePixelRatio || 1;
        return Array.from(c.getContext('2d').getImageData(Math.round(x * d), Math.round(y * d),
          1, 1).data); }""",
        [x, y],
    )


# A VideoTruth outlet, as the participant camera publishes it: row k stamped t0 + k / rate.
TRUTH_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np, pylsl
    from nodes.emg import load_node_config
    from streaming.acquisition.lsl_io import ChunkOutlet
    from simulation.emg import EmgSimulator
    from simulation.participant.truth import truth_labels, truth_stream_info
    name, t0, rate, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    muscles = EmgSimulator(load_node_config().simulator).muscle_labels
    labels = truth_labels(muscles)
    info = truth_stream_info(name, rate, name + "-src", muscles, of_stream="cam", extra={})
    outlet = ChunkOutlet(info, max_buffered_s=10)
    where = {label: i for i, label in enumerate(labels)}
    for k in range(n):
        row = np.zeros(len(labels), np.float32)
        row[where["frame_index"]] = k
        phi = [i for label, i in where.items() if label.startswith("phi_")]
        row[phi] = 0.4 * np.sin(0.3 * np.arange(len(phi)) + 0.05 * k)
        for key, value in zip(("x", "y", "w", "h"), (600.0, 120.0, 150.0, 180.0)):
            row[where[f"face_{key}_px"]] = value
        for i, label in enumerate(muscles):
            row[where["act_" + label]] = 0.5 + 0.4 * np.sin(0.1 * k + i)
        t = t0 + k / rate
        time.sleep(max(0.0, t - pylsl.local_clock()))
        outlet.push(row[None, :], t)
    time.sleep(2.0)
    """
)


def test_the_panel_shows_image_box_landmarks_crop_and_the_truth(
    browser, display_config, unique_name: str, artifacts: Path
) -> None:
    import pylsl

    truth_name = f"{unique_name}-truth"
    n_frames = int(40 * RATE_HZ)
    t0 = pylsl.local_clock() + 4.0  # the child's outlet is up by then
    child = subprocess.Popen(
        [sys.executable, "-c", TRUTH_CHILD, truth_name, repr(t0), str(RATE_HZ), str(n_frames)]
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    stop = threading.Event()
    face = _face_fields()

    def publish() -> None:  # the pipeline's messages for the same frames, a little later
        for k in range(n_frames):
            t = t0 + k / RATE_HZ
            stop.wait(max(0.0, t + 0.08 - pylsl.local_clock()))
            if stop.is_set():
                return
            activity = np.full(22, 0.3, np.float32)
            publisher.publish(
                "muscle",
                {
                    "channels": LABELS,
                    "emg_measured": activity,
                    "normalised": True,
                    "emg_from_video": activity,
                },
                t=t,
                frame=k,
            )
            publisher.publish(
                "expression",
                {
                    "phi_video": np.zeros(55, np.float32),
                    "phi_emg": np.zeros(55, np.float32),
                    "face_detected": True,
                    "face_box": BOX,
                },
                t=t,
                frame=k,
            )
            if k % 6 == 0:  # 5 Hz, as the pipeline's default
                publisher.publish("face", face, t=t, frame=k)

    sender = threading.Thread(target=publish, daemon=True)
    config = display_config(publisher.address, video_truth=truth_name)
    try:
        with ServerThread(config) as server:
            sender.start()
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.server.url)
            page.wait_for_function(
                "() => window.eiferStats.face.drawn > 3 && window.eiferStats.face.truth_box"
                " && window.eiferStats.face.truth_phi > 10"
                " && window.eiferStats.face.truth_activation > 10",  # counted from another topic
                timeout=40000,
            )
            stats = _stats(page)["face"]
            rect = stats["rect"]
            box = np.asarray(stats["box"])
            # the box's top edge in the middle, and the middle of the crop
            edge = _pixel(
                page, rect["x"] + (box[0] + box[2] / 2) * rect["s"], rect["y"] + box[1] * rect["s"]
            )
            crop_mid = _pixel(page, rect["crop_x"] + rect["crop_w"] / 2, rect["crop_w"] / 2)
            note_visible = page.is_visible("#face-note")
            legend_visible = page.is_visible("#phi-truth-legend")
            page.screenshot(path=str(artifacts / "display_face_truth.png"), full_page=True)
            health = server.call(server.server.health)
            page.close()
    finally:
        stop.set()
        sender.join(5)
        publisher.close()
        child.terminate()
        child.wait(10)
    assert not errors, errors
    assert stats["image_size"] == [320, 180] and stats["crop"] is True
    np.testing.assert_allclose(box, BOX * 0.25, atol=1e-3)  # JPEG pixels
    np.testing.assert_allclose(stats["truth_box"], TRUE_BOX * 0.25, atol=1e-3)
    assert stats["landmarks"] == 478
    assert stats["truth_activation"] > 10
    assert edge[:3] == pytest.approx([0xFF, 0xB7, 0x4D], abs=40)  # the orange box is drawn
    assert crop_mid[:3] != [0x20, 0x28, 0x34]  # the crop is drawn over its background
    assert not note_visible and legend_visible
    assert health["truth"]["video"]["connected"] is True


def test_without_the_face_topic_the_panel_says_no_camera_image(
    browser, publisher, display_config
) -> None:
    with ServerThread(display_config(publisher.address)) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(server.server.url)
        page.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 20", timeout=15000)
        note = page.text_content("#face-note")
        visible = page.is_visible("#face-note")
        canvas_visible = page.is_visible("#face")
        truth_legend = page.is_visible("#truth-legend")
        page.close()
    assert visible and not canvas_visible and "no camera image" in note
    assert not truth_legend  # no truth stream configured, as in a lab


def _corrupt_body(jpeg: bytes) -> bytes:
    """A JPEG whose headers are intact (so the server's header check passes) but which ends
    before its scan: only a decoder finds out. (Garbage scan data is no test: Chromium draws
    whatever it can decode of it.)"""
    sos = jpeg.index(b"\xff\xda")
    return jpeg[:sos] + b"\xff\xd9"


def test_hostile_face_messages_are_rejected_and_counted_while_the_page_keeps_working(
    browser, display_config
) -> None:
    import msgpack
    import zmq

    good = _face_fields()
    png = cv2.imencode(".png", FRAME[:180, :320])[1].tobytes()
    huge = bytearray(good["image"])
    sof = huge.index(b"\xff\xc0")
    huge[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # claims 60000 x 60000 pixels
    small = encode_jpeg(FRAME[:8, :8])
    hostile = [
        encode("face", dict(good, image=png)),
        encode("face", dict(good, image=bytes(huge))),
        encode("face", dict(good, image=good["image"][:2000])),
        encode("face", dict(good, image="not bytes")),
        encode("face", dict(good, image_size=[3000, 3000])),
        encode("face", dict(good, scale="big")),
        encode("face", dict(good, face_box="here")),
        encode("face", dict(good, crop=png)),
        encode("face", dict(good, landmarks=np.zeros((5, 7), np.float32))),
        encode("face", {"image": small}),
        [
            b"face",
            msgpack.packb(
                {"schema": 1, "fields": {"image": {"dtype": "|u1", "shape": [2**40], "data": b""}}}
            ),
        ],
    ]
    corrupt = encode("face", dict(good, image=_corrupt_body(good["image"])))
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def attack() -> None:
        frame = 0
        while not stop.is_set():
            for parts in hostile:
                pub.send_multipart(parts)
            if frame % 10 == 5:  # now and then one only the browser can find corrupt
                pub.send_multipart(corrupt)
            pub.send_multipart(encode("face", good, t=frame / 30, frame=frame))
            pub.send_multipart(
                encode(
                    "muscle",
                    {"channels": LABELS, "emg_measured": np.full(22, 0.4, np.float32)},
                    t=frame / 30,
                    frame=frame,
                )
            )
            frame += 1
            stop.wait(1 / 10)

    sender = threading.Thread(target=attack, daemon=True)
    try:
        with ServerThread(display_config(f"tcp://127.0.0.1:{port}")) as server:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page_errors: list[str] = []
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(server.server.url)
            page.wait_for_function("() => window.eiferStats.connects === 1", timeout=15000)
            sender.start()
            page.wait_for_function(
                "() => window.eiferStats.face.decoded > 15 && window.eiferStats.face.failed > 0",
                timeout=40000,
            )
            page.wait_for_function(
                "() => document.getElementById('conn').textContent === 'live'", timeout=5000
            )
            stats = _stats(page)
            health = server.call(server.server.health)
            page.close()
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(5)
        pub.close()
    assert not page_errors, page_errors
    face = stats["face"]
    assert face["image_size"] == [320, 180] and face["crop"] is True  # the good ones are shown
    assert stats["bad"].get("face", 0) == face["failed"]  # each corrupt picture counted, once
    assert face["failed"] <= face["decoded"]  # not every message failed: the page kept working
    assert health["bus_thread"]["alive"] and health["invalid"] >= 10 * 15
    assert health["undecodable"] >= 15  # the 2**40-element array never reached numpy
    assert any("face" in e for e in health["errors"])  # named in /health and on the page


def test_the_screenshot_tool_saves_a_png_of_the_live_page(
    browser, publisher, display_config, tmp_path: Path
) -> None:
    del browser  # skips the test where Chromium is missing; the tool launches its own
    out = tmp_path / "shot.png"
    with ServerThread(display_config(publisher.address)) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "nodes.display.screenshot",
                "--url",
                server.server.url,
                "--out",
                str(out),
                "--no-wait-face",
                "--settle-s",
                "0.5",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] == 1600 and image.shape[0] >= 1200
    assert image.std() > 10  # a drawn page, not a blank one


def test_the_screenshot_tool_says_in_one_line_when_the_page_shows_no_data(tmp_path: Path) -> None:
    from nodes.display.headless import CHROMIUM
    from nodes.display.screenshot import ScreenshotError, save_screenshot

    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Chromium")
    with pytest.raises(ScreenshotError, match="no live data within 3 s"):
        save_screenshot("http://127.0.0.1:1/", tmp_path / "x.png", wait_face=False, timeout_s=3)
