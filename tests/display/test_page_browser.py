"""The page in headless Chromium, fed by a real bus publisher through a real display server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nodes.display.server import ServerThread

pytestmark = pytest.mark.browser


def _watch(page) -> tuple[list[str], list[str]]:
    """Collect console errors and failed requests of ``page``."""
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else None)
    return errors, failed


def _stats(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.eiferStats))")


def test_page_shows_live_data_without_errors_and_numbers_change(
    browser, publisher, display_config, artifacts: Path
) -> None:
    config = display_config(publisher.address, head_model="synthetic", target="Smile-Open")
    with ServerThread(config) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        errors, failed = _watch(page)
        page.goto(server.server.url)
        page.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 10", timeout=15000)
        page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
        first = _stats(page)
        score_1 = page.text_content("#score")
        time.sleep(1.5)
        second = _stats(page)
        score_2 = page.text_content("#score")
        page.wait_for_function("() => (window.eiferStats.received.display || 0) > 0", timeout=5000)
        page.screenshot(path=str(artifacts / "display_live.png"), full_page=True)
        instruction = page.text_content("#instruction")
        status = page.text_content("#status")
        target_options = page.eval_on_selector_all(
            "#target-select option", "os => os.map(o => o.value)"
        )
        head_hidden = page.eval_on_selector("#head", "c => c.classList.contains('hidden')")
        page.close()
    assert not failed, failed
    assert not errors, errors
    assert second["received"]["muscle"] > first["received"]["muscle"] + 20  # ~30 Hz for 1.5 s
    assert second["paints"] > first["paints"]
    assert second["received"]["feedback"] > 0
    assert instruction.startswith("Please do:")
    assert "EMG" in status and "onnxruntime-cpu" in status and "dsp" in status
    assert "Smile-Open" in target_options and "Face-At-Rest" in target_options
    assert score_1 != "–" and score_2 != "–"
    assert 0 <= int(score_2) <= 100
    assert not head_hidden


def test_page_target_and_metric_selectable_from_the_page(
    browser, publisher, display_config, tmp_path: Path
) -> None:
    config = display_config(publisher.address, reference_dir=str(tmp_path))
    with ServerThread(config) as server:
        page = browser.new_page()
        page.goto(server.server.url)
        page.wait_for_function(
            "() => (window.eiferStats.received.feedback || 0) > 5", timeout=15000
        )
        assert page.text_content("#score") == "–"  # no target yet
        page.select_option("#target-select", "Forehead-Raise")
        page.wait_for_function(
            "() => document.getElementById('score-label').textContent.includes('Forehead-Raise')"
        )
        page.wait_for_function("() => document.getElementById('score').textContent !== '–'")
        page.select_option("#metric-select", "distance")
        page.wait_for_function(
            "() => document.getElementById('score-label').textContent.includes('distance')"
        )
        page.click("#capture")
        page.wait_for_function(
            "() => document.getElementById('score-label').textContent.includes('reference-')"
        )
        assert server.server.feedback.target_name.startswith("file:")
        saved = list(tmp_path.glob("reference-*.toml"))
        assert len(saved) == 1 and "F22" in saved[0].read_text()
        assert server.server.feedback.scorer.metric == "distance"
        page.close()


def test_page_without_head_model_hides_the_panel_with_a_note(
    browser, publisher, display_config
) -> None:
    with ServerThread(display_config(publisher.address)) as server:
        page = browser.new_page()
        page.goto(server.server.url)
        page.wait_for_function("() => window.eiferStats.received.hello > 0", timeout=15000)
        assert page.eval_on_selector("#head", "c => c.classList.contains('hidden')")
        assert "no head model" in page.text_content("#head-note")
        page.close()


def test_page_says_no_data_when_the_bus_is_silent(browser, display_config) -> None:
    config = display_config("tcp://127.0.0.1:1", stale_after_s=0.5)  # nobody publishes there
    with ServerThread(config) as server:
        page = browser.new_page()
        page.goto(server.server.url)
        page.wait_for_function("() => document.getElementById('conn').textContent === 'no data'")
        assert "No data" in page.text_content("#nodata")
        page.close()


def test_page_reconnects_after_a_server_restart(
    browser, publisher, display_config, artifacts: Path
) -> None:
    config = display_config(publisher.address)
    first = ServerThread(config)
    url = first.start()
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("() => window.eiferStats.connects === 1", timeout=15000)
    first.stop()
    page.wait_for_function(
        "() => document.getElementById('conn').textContent.startsWith('reconnecting')",
        timeout=10000,
    )
    assert "reconnecting" in page.text_content("#nodata")
    page.screenshot(path=str(artifacts / "display_reconnecting.png"))
    second = ServerThread(display_config(publisher.address, port=port))
    second.start()
    try:
        page.wait_for_function("() => window.eiferStats.connects === 2", timeout=20000)
        before = _stats(page)["received"].get("muscle", 0)
        page.wait_for_function(
            f"() => (window.eiferStats.received.muscle || 0) > {before + 10}", timeout=10000
        )
        page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
    finally:
        page.close()
        second.stop()


def test_page_draws_microvolts_without_profile_or_models(
    browser, publisher_factory, display_config, artifacts: Path
) -> None:
    publisher = publisher_factory(profile=False)
    with ServerThread(display_config(publisher.address, target="Smile-Open")) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        errors, failed = _watch(page)
        page.goto(server.server.url)
        page.wait_for_function(
            "() => (window.eiferStats.received.feedback || 0) > 20", timeout=15000
        )
        unit = page.text_content("#emg-unit")
        score = page.text_content("#score")
        page.screenshot(path=str(artifacts / "display_microvolts.png"), full_page=True)
        page.close()
    assert not errors and not failed, (errors, failed)
    assert "microvolts" in unit
    assert score != "–"  # the cosine score is scale-free: it works on microvolts too


def test_page_draws_the_kuramoto_scheme_too(browser, publisher_factory, display_config) -> None:
    publisher = publisher_factory(scheme="kuramoto")
    config = display_config(publisher.address, scheme="kuramoto", target="Smile-Open")
    with ServerThread(config) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        errors, failed = _watch(page)
        page.goto(server.server.url)
        page.wait_for_function(
            "() => (window.eiferStats.received.feedback || 0) > 10", timeout=15000
        )
        labels = page.evaluate("() => window.eiferStats.received.hello")
        score = page.text_content("#score")
        server_errors = server.call(server.server.health)["errors"]
        page.close()
    assert not errors and not failed, (errors, failed)
    assert labels == 1 and score != "–"
    assert not server_errors


def test_participant_view_shows_only_the_participant_panels(
    browser, publisher, display_config, artifacts: Path
) -> None:
    config = display_config(publisher.address, target="Smile-Open", head_model="synthetic")
    with ServerThread(config) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        errors, failed = _watch(page)
        page.goto(server.server.url + "?view=participant")
        page.wait_for_function(
            "() => (window.eiferStats.received.feedback || 0) > 20", timeout=15000
        )
        status_visible = page.is_visible("#status")
        controls_visible = page.is_visible("#target-select")
        heatmap_visible = page.is_visible("#heatmap")
        page.screenshot(path=str(artifacts / "display_participant.png"), full_page=True)
        page.close()
    assert not errors and not failed, (errors, failed)
    assert not status_visible and not controls_visible
    assert heatmap_visible


def test_hostile_bus_messages_never_break_the_page(browser, display_config) -> None:
    """Every message that used to break the page (or stop the display), sent again and again,
    interleaved with good data: the open page and one opened later both show the good data."""
    import threading

    import msgpack
    import numpy as np
    import zmq

    from streaming.acquisition.electrodes import load_scheme
    from streaming.bus.pubsub import encode

    labels = load_scheme("fridlund").labels
    overflow = {"dtype": "<f4", "shape": [2**32, 2**32], "data": b""}
    quality = {"sample_index": 0, "metrics": {}, "mains_hz": 50.0}  # the rest below
    hostile = [
        [b"muscle", msgpack.packb({"schema": 1, "fields": {"x": overflow}})],
        [b"muscle", msgpack.packb({"schema": 1, "fields": {"x": {"dtype": "<f4", "shape": [2**64 - 1], "data": b""}}})],
        encode("hello", {"labels": 3, "pairs": "x"}),
        encode("feedback_config", {"targets": 1}),
        encode("display", {"errors": 5}),
        encode("instruction", {"text": ["not", "text"], "remaining_s": "soon", "index": "x"}),
        encode("muscle", {"channels": 7, "emg_measured": [1.0]}),
        encode("muscle", {"channels": labels}),
        encode("status", {"streams": {"emg": None}, "latency_ms": {"dsp": None}, "errors": 3}),
        encode("expression", {"phi_video": "smile"}),
        # valid per the contract, yet extreme: drawn (or not) without an error
        encode("muscle", {"channels": [], "emg_measured": np.zeros(0, np.float32)}),
        encode("muscle", {"channels": labels, "emg_measured": np.full(22, 3e38, np.float32),
                          "emg_from_video": np.full(22, -np.inf, np.float32), "normalised": True}),
        encode("expression", {"phi_video": np.full(500, 1e300), "phi_emg": [], "face_box": None}),
        encode("status", {"streams": {"<img src=x onerror=alert(1)>": {"connected": True}},
                          "latency_ms": {}, "frames": {}, "errors": ["<b>bold</b>"]}),
        encode("instruction", {"text": "", "index": -(2**63), "total": 2**64 - 1}),
        encode("quality", {**quality, "channels": labels, "states": "bad", "reasons": []}),
        # valid per the contract, yet odd: no channels, another scheme's, markup in the reasons
        encode("quality", {**quality, "channels": [], "states": [], "reasons": []}),
        encode("quality", {**quality, "channels": ["K1"], "states": ["check"], "reasons": [["mains"]]}),
        encode("quality", {**quality, "channels": labels, "states": ["bad"] * 22,
                           "reasons": [["<img src=x onerror=alert(1)>", "bridged:", "silent"]] * 22,
                           "metrics": {"noise_db": np.full(22, 1e308)}}),
    ]  # fmt: skip
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def attack() -> None:
        frame = 0
        while not stop.is_set():
            for parts in hostile:
                pub.send_multipart(parts)
            activity = np.full(22, 0.4, np.float32)
            pub.send_multipart(encode("instruction", {"text": "Please do: Smile-Open"}))
            pub.send_multipart(
                encode("muscle", {"channels": labels, "emg_measured": activity}, t=frame / 30)
            )
            frame += 1
            stop.wait(1 / 30)

    sender = threading.Thread(target=attack, daemon=True)
    config = display_config(f"tcp://127.0.0.1:{port}", target="Smile-Open")
    try:
        with ServerThread(config) as server:
            first = browser.new_page()
            errors, failed = _watch(first)
            first.goto(server.server.url)
            first.wait_for_function("() => window.eiferStats.connects === 1", timeout=15000)
            sender.start()
            pages = [first]
            first.wait_for_function(
                "() => (window.eiferStats.received.muscle || 0) > 30", timeout=20000
            )
            later = browser.new_page()  # a later visitor gets the cache
            later_errors, _ = _watch(later)
            later.goto(server.server.url)
            pages.append(later)
            for page in pages:
                page.wait_for_function(
                    "() => (window.eiferStats.received.feedback || 0) > 10", timeout=20000
                )
                page.wait_for_function(
                    "() => document.getElementById('conn').textContent === 'live'", timeout=5000
                )
                # the good instruction shows between the hostile ones (one of those is a valid
                # empty text, so a single snapshot may fall between the two: wait for it)
                page.wait_for_function(
                    "() => document.getElementById('instruction').textContent"
                    " === 'Please do: Smile-Open'",
                    timeout=10000,
                )
            shown = [
                (p.text_content("#instruction"), p.text_content("#score"), _stats(p)) for p in pages
            ]
            injected = [
                p.evaluate(
                    "() => [document.querySelectorAll('main img').length,"
                    " document.getElementById('quality-list').textContent.includes('<img src=x')]"
                )
                for p in pages
            ]
            health = server.call(server.server.health)
            for page in pages:
                page.close()
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(5)
        pub.close()
    assert not errors and not later_errors and not failed, (errors, later_errors, failed)
    for instruction, score, stats in shown:
        assert instruction in ("Please do: Smile-Open", "")  # "": the hostile valid empty text
        assert score != "–"
        assert stats["bad"] == {}  # the server let nothing through that the page cannot draw
        assert stats["received"]["hello"] == 1
    assert injected == [[0, True], [0, True]]  # reasons from the bus are shown as text, not markup
    assert all(stats["received"].get("quality", 0) > 10 for _, _, stats in shown)
    assert health["bus_thread"]["alive"] and health["invalid"] > 100
    assert health["undecodable"] > 20 and health["ignored_topics"] > 30


def test_page_opened_with_its_token_works_and_without_it_is_refused(
    browser, publisher, display_config
) -> None:
    """The tablet's view of a display that needs a token (127.0.0.2 with a token configured
    stands for a lab address): the printed URL opens a live page, the bare URL gets 403."""
    config = display_config(
        publisher.address, host="127.0.0.2", token="tablet-token-5678", head_model="synthetic"
    )
    with ServerThread(config) as server:
        context = browser.new_context()
        bare = context.new_page()
        refused = bare.goto(server.server.url)
        refused_text = bare.text_content("body")
        bare.close()
        page = context.new_page()
        errors, failed = _watch(page)
        page.goto(server.server.open_url)
        page.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 10", timeout=15000)
        page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
        head_hidden = page.eval_on_selector("#head", "c => c.classList.contains('hidden')")
        context.close()
    assert refused is not None and refused.status == 403
    assert "needs its access token" in (refused_text or "")
    assert not failed, failed
    assert not errors, errors
    assert not head_hidden  # /head.bin, fetched by the page, carried the cookie too
