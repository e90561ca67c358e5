"""The electrode map driven by the real system (issue 21: "the page in a real browser"): the EMG
simulator node with F9 (right levator labii) lifting off -> LSL -> the real pipeline (EMG only, no
models, no camera) and its quality stage -> the bus -> the real display server -> headless
Chromium. Before the fault every spot is green; once the electrode is an open input its spot turns
red with the reason on hover, and the other 21 stay green."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodes.display.server import ServerThread
from streaming.acquisition.lsl_io import StreamSelector, find_stream
from streaming.bus.pubsub import Publisher
from streaming.config import validate
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from tests.display.test_quality_page import GREEN, RED, SNAPSHOT
from tests.emg.simulator_node import simulator_node

LIFTED = "F9"
FAULT_START_S, RAMP_S = 20.0, 2.0  # simulator time: the page is up well before


@pytest.fixture
def lifting_node(unique_name: str) -> Iterator[str]:
    fault = (f'{{channel="{LIFTED}", kind="lifting", start_s={FAULT_START_S}, ramp_s={RAMP_S}, '
             "noise_uv=50.0, amplitude_uv=100.0}")  # fmt: skip
    with simulator_node(unique_name, fault):
        yield unique_name


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_lifting_electrode_of_the_live_system_turns_red_on_the_page(
    lifting_node, browser, display_config, artifacts: Path
) -> None:
    name = lifting_node
    find_stream(StreamSelector(name=name), timeout_s=60)
    config = validate(
        PipelineConfig,
        {
            "emg": {"name": name, "type": "EMG", "reconnect_timeout_s": 1.0},
            "video": {"enabled": False},
            "output": {"lsl_name": name + "-EIFER", "lsl_predictions": False},
            "quality": {"markers_stream": "", "lsl_stream": False},
        },
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    pipeline = Pipeline(config, publisher=publisher)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    problems: list[str] = []
    try:
        with ServerThread(display_config(publisher.address, head_model="synthetic")) as server:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(server.server.url)
            page.wait_for_function(
                "() => { const s = window.eiferStats.quality.states || {};"
                " return Object.keys(s).length === 22 && Object.values(s).every(v => v === 'good'); }",
                timeout=30000,
            )
            clean = page.evaluate(SNAPSHOT)
            page.wait_for_function(
                f"() => window.eiferStats.quality.states['{LIFTED}'] === 'bad'", timeout=60000
            )
            page.hover(f'#electrodes .spot[data-label="{LIFTED}"]')
            page.wait_for_selector("#quality-tip:not(.hidden)")
            lifted = page.evaluate(SNAPSHOT)
            page.screenshot(path=str(artifacts / "display_quality_live.png"), full_page=True)
            page.close()
    finally:
        pipeline.stop()
        thread.join(10)
        publisher.close()
    assert not problems, problems
    assert set(clean["fills"].values()) == {GREEN} and clean["summary"] == "22 good"
    text = lifted["titles"][LIFTED]
    assert text.startswith(f"{LIFTED} (levator labii superioris, right): bad: electrode lifting")
    assert lifted["tip_text"] == text.replace(": ", "", 1)  # the hover box says the same
    assert lifted["fills"][LIFTED] == RED and lifted["crosses"] == [LIFTED]
    assert {label for label, fill in lifted["fills"].items() if fill != GREEN} == {LIFTED}
    assert lifted["summary"] == "21 good · 1 bad"
