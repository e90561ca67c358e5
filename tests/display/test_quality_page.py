"""Electrode quality on the page (issue 21 item 2): a lifting electrode, simulated and judged by the
real quality monitor, reaches headless Chromium through a real bus publisher and display server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodes.display.server import ServerThread
from streaming.bus.pubsub import decode, encode
from streaming.errors import PayloadError
from tests.display.conftest import LIFTING, QualityFramePublisher, lifting_quality_reports

LIFTED = LIFTING["channel"]
RED, AMBER, GREEN = "rgb(239, 83, 80)", "rgb(255, 202, 40)", "rgb(102, 187, 106)"  # style.css


@pytest.fixture(scope="module")
def reports() -> list:
    """The monitor's reports, checked first: clean before the fault, then the lifted electrode
    ``bad`` (an open input) while every other stays ``good``."""
    reports = lifting_quality_reports()
    first_bad = next(k for k, r in enumerate(reports) if r.state(LIFTED) == "bad")
    assert all(set(r.states) == {"good"} for r in reports[:6])  # 0-3 s: no fault yet
    assert [r.state(LIFTED) for r in reports[6:first_bad]] == ["check"]  # first the hum
    for r in reports[first_bad:]:
        assert r.state(LIFTED) == "bad" and "noise" in r.reasons_of(LIFTED)
        assert r.bad_channels == [LIFTED] and r.states.count("good") == 21
    return reports


def test_server_relays_quality_and_drops_a_report_that_breaks_the_contract(
    reports, display_config
) -> None:
    """Not started: the message path needs no sockets. NaN metrics reach the page as null."""
    from nodes.display.server import DisplayServer

    server = DisplayServer(display_config("tcp://127.0.0.1:1"))
    report = reports[-1].to_dict()
    [(topic, text)] = server.accept(decode(encode("quality", report, t=12.0)))
    fields = json.loads(text)["fields"]  # strict JSON: no NaN
    assert topic == "quality" and fields["states"] == report["states"]
    assert fields["reasons"][report["channels"].index(LIFTED)] == ["noise", "mains"]
    rest = fields["metrics"]["rest_rms_uv"]
    assert len(rest) == 22 and all(v is None or isinstance(v, float) for v in rest)
    broken = dict(report, states=report["states"][:-1])
    with pytest.raises(PayloadError, match="states has 21 values for 22 channels"):
        server.accept(decode(encode("quality", broken)))
    assert server.bus_messages == 1


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url} {r.failure}"))
    return problems


SNAPSHOT = """() => {
  const spot = (l) => document.querySelector(`#electrodes .spot[data-label="${l}"]`);
  const q = JSON.parse(JSON.stringify(window.eiferStats.quality));
  return { ...q,
    fills: Object.fromEntries(Object.keys(q.states).map(
      (l) => [l, getComputedStyle(spot(l).querySelector(".shape")).fill])),
    titles: Object.fromEntries(Object.keys(q.states).map((l) => [l, spot(l).querySelector("title").textContent])),
    shapes: Object.fromEntries(Object.keys(q.states).map(
      (l) => [l, spot(l).querySelector(".shape").getAttribute("d").replace(/[^A-Za-z]/g, "")])),
    crosses: Object.keys(q.states).filter((l) => spot(l).querySelector(".cross").getAttribute("d")),
    tip_text: document.getElementById("quality-tip").textContent,
    list: Array.from(document.querySelectorAll("#quality-list li"), (li) => li.textContent),
    summary: document.getElementById("quality-summary").textContent,
    note: document.getElementById("quality-note").textContent,
    note_visible: !document.getElementById("quality-note").classList.contains("hidden"),
  };
}"""


# the lifted spot's states as drawn, in order: [state, fill, its outline's path commands]
WATCH_STATES = """(label) => {
  const g = document.querySelector(`#electrodes .spot[data-label="${label}"]`);
  window.seenStates = [];
  new MutationObserver(() => {
    const shape = g.querySelector(".shape");
    window.seenStates.push([g.dataset.state, getComputedStyle(shape).fill,
      shape.getAttribute("d").replace(/[^A-Za-z]/g, "")]);
  }).observe(g, { attributes: true, attributeFilter: ["data-state"] });
}"""


def _snapshot(page) -> dict:
    """Everything the quality panel shows, read in one go (a report arrives every 0.5 s)."""
    return page.evaluate(SNAPSHOT)


def test_a_lifting_electrode_turns_red_with_its_reason_and_stale_data_greys_out(
    browser, reports, display_config, artifacts: Path
) -> None:
    publisher = QualityFramePublisher(reports).start()
    try:
        config = display_config(publisher.address, stale_after_s=2.0, head_model="synthetic")
        with ServerThread(config) as server:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            problems = _watch(page)
            page.goto(server.server.url)
            page.wait_for_function(
                "() => (window.eiferStats.received.muscle || 0) > 5", timeout=15000
            )
            never = page.text_content("#quality-note")
            publisher.quality_on.set()  # the reports from their start, as the page sees them live
            # before the fault: 22 green circles
            page.wait_for_function(
                "() => { const s = window.eiferStats.quality.states;"
                " return Object.keys(s).length === 22 && Object.values(s).every(v => v === 'good'); }",
                timeout=15000,
            )
            clean = _snapshot(page)
            page.evaluate(WATCH_STATES, LIFTED)
            # the electrode lifts: ~4.5 s of reports later it is an open input
            page.wait_for_function(
                f"() => window.eiferStats.quality.states['{LIFTED}'] === 'bad'", timeout=15000
            )
            page.hover(f'#electrodes .spot[data-label="{LIFTED}"]')
            page.wait_for_selector("#quality-tip:not(.hidden)")
            lifted = _snapshot(page)
            seen = page.evaluate("() => window.seenStates")
            page.focus('#electrodes .spot[data-label="F10"]')  # the keyboard's way: Tab
            focused = page.text_content("#quality-tip")
            page.screenshot(path=str(artifacts / "display_quality_page.png"), full_page=True)
            panel = page.locator("#quality-panel").bounding_box()  # the README's: traces + map
            bottom = panel["y"] + panel["height"] + 8
            clip = {"x": 0, "y": 0, "width": 1600, "height": bottom}
            page.screenshot(path=str(artifacts / "display_quality.png"), clip=clip)
            # the pipeline stops reporting quality (the EMG keeps flowing): greyed, "no quality data"
            publisher.quality_on.clear()
            page.wait_for_function("() => !window.eiferStats.quality.live", timeout=6000)
            stale = _snapshot(page)
            page.locator("#quality-panel").screenshot(path=str(artifacts / "quality_stale.png"))
            badge = page.text_content("#conn")
            page.close()
    finally:
        publisher.stop()
    assert not problems, problems
    assert never == "no quality data (the pipeline publishes no quality topic)"
    assert set(clean["fills"].values()) == {GREEN} and not clean["crosses"]
    assert set(clean["shapes"].values()) == {"MaaZ"}  # circles
    assert clean["list"] == ["every electrode good"] and clean["summary"] == "22 good"
    # the lifted electrode: red, a square with a cross (the shape says "bad" without the colour)
    who = f"{LIFTED} (levator labii superioris, right)"
    text = lifted["texts"][LIFTED]
    assert text.startswith(f"{who}: bad: electrode lifting / open input")
    assert "noise +" in text and "dB over its neighbours" in text and "mains hum" in text
    assert lifted["titles"][LIFTED] == text  # the native tooltip, for screen readers too
    assert lifted["tip"] == text and lifted["tip_text"] == text.replace(": ", "", 1)
    assert lifted["fills"][LIFTED] == RED and lifted["crosses"] == [LIFTED]
    assert {label for label, fill in lifted["fills"].items() if fill != GREEN} == {LIFTED}
    assert {label for label, d in lifted["shapes"].items() if d != "MaaZ"} == {LIFTED}
    assert {label for label, s in lifted["states"].items() if s != "good"} == {LIFTED}
    assert lifted["list"] == [text] and lifted["summary"] == "21 good · 1 bad"
    assert lifted["trace_marks"][LIFTED] == f"{LIFTED} bad: lifting / open input, mains hum"
    assert lifted["trace_marks"]["F10"] == "F10"  # its partner: a green marker, no words
    # on its way: amber triangle (mains hum as the contact dries), then the red square
    assert seen == [["check", AMBER, "MLLZ"], ["bad", RED, "MhvhZ"]]  # triangle, square
    assert focused == "F10 (levator labii superioris, left)good"
    # stale: every spot a grey dashed ring, the note, the last verdict kept in the words
    assert set(stale["states"].values()) == {"none"} and set(stale["fills"].values()) == {"none"}
    assert stale["note_visible"] and stale["note"].startswith("no quality data (last report")
    assert stale["summary"] == "no quality data" and stale["list"] == []
    assert stale["trace_marks"][LIFTED] == f"{LIFTED} no quality data"
    assert stale["texts"][LIFTED].startswith(f"{who}: no quality data (last: bad: electrode")
    assert badge == "live"  # only the quality went stale, not the page
