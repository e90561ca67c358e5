"""Display update rate and latency, bus message -> browser paint, at 30/60/90 Hz.

A bus publisher sends pipeline-like frames (``muscle`` + ``expression`` per frame, ``status`` and
``instruction`` at 1 Hz) with the wall-clock send time in ``muscle.sent_unix_s``. The display
server relays them to headless Chromium (Debian ``/usr/bin/chromium`` through playwright).
The page applies each message, draws it in the next requestAnimationFrame callback and from
there posts a MessageChannel message, which runs after the browser has rendered that frame:
``Date.now()`` then minus the send time is the paint latency (``latency_ms``); the time at the
end of the drawing callback is kept too (``draw_latency_ms``). Peer in the same run: a plain
WebSocket client (aiohttp, no rendering) on the same server measures bus -> socket receive, so
the ratio page/peer shows the browser's share (parse, wait for the animation frame, draw,
raster and composite without a GPU).

Run: ``.venv/bin/python -m benchmarks.display_latency [--seconds 8] [--rates 30 60 90]``;
writes ``benchmarks/results/display_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from nodes.display.headless import CHROMIUM, CHROMIUM_ARGS
from nodes.display.server import DisplayConfig, ServerThread
from streaming.acquisition.electrodes import load_scheme
from streaming.bus.pubsub import Publisher

RESULTS = Path(__file__).resolve().parent / "results" / "display_latency.json"


def publish(address_box: list[str], rate_hz: float, stop: threading.Event, ready: threading.Event):
    """Publish frames at ``rate_hz`` until ``stop``; returns nothing, counts in address_box[1]."""
    scheme = load_scheme("fridlund")
    rng = np.random.default_rng(0)
    with Publisher("tcp://127.0.0.1:*") as pub:
        address_box.append(pub.address)
        ready.set()
        frame, next_t = 0, time.monotonic()
        while not stop.is_set():
            t = time.monotonic()
            act = np.abs(rng.normal(0.2, 0.15, 22)).astype(np.float32)
            phi = rng.normal(0, 0.5, 55).astype(np.float32)
            pub.publish(
                "muscle",
                {
                    "channels": scheme.labels,
                    "emg_measured": act,
                    "emg_measured_uv": act * 80,
                    "normalised": True,
                    "emg_missing": False,
                    "emg_from_video": act * 0.9,
                    "emg_from_video_uv": act * 72,
                    "sent_unix_s": time.time(),
                },
                t=t,
                frame=frame,
            )
            pub.publish(
                "expression",
                {"phi_video": phi, "phi_emg": phi * 0.8, "pose": np.zeros(6, np.float32)},
                t=t,
                frame=frame,
            )
            if frame % int(rate_hz) == 0:
                pub.publish(
                    "instruction",
                    {
                        "text": "Smile-Open",
                        "movement": "Smile-Open",
                        "repetition": 1,
                        "phase": "perform",
                        "remaining_s": 5.0,
                        "index": 5,
                        "total": 33,
                    },
                )
                pub.publish(
                    "status",
                    {
                        "streams": {},
                        "latency_ms": {},
                        "frames": {},
                        "backend": "none",
                        "feature": "bench",
                        "errors": [],
                    },
                )
            frame += 1
            next_t += 1.0 / rate_hz
            delay = next_t - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_t = time.monotonic()


async def raw_client(url: str, seconds: float, out: dict[str, Any]) -> None:
    """The peer: receive over a WebSocket without rendering; latency to receive."""
    from aiohttp import ClientSession

    latencies: list[float] = []
    count = 0
    async with (
        ClientSession() as session,
        session.ws_connect(url.replace("http", "ws") + "ws") as ws,
    ):
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            body = json.loads(msg.data)
            if body["topic"] == "muscle" and "sent_unix_s" in body["fields"]:
                latencies.append(1000 * (time.time() - body["fields"]["sent_unix_s"]))
                count += 1
    out["latency_ms"], out["received"] = latencies, count


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_rate(
    browser: Any,
    rate_hz: float,
    seconds: float,
    head: str = "synthetic",
    viewport: tuple[int, int] = (1600, 1200),
) -> dict[str, Any]:
    stop, ready, box = threading.Event(), threading.Event(), []
    pub_thread = threading.Thread(target=publish, args=(box, rate_hz, stop, ready), daemon=True)
    pub_thread.start()
    ready.wait(5)
    config = DisplayConfig(bus_address=box[0], port=0, head_model=head)
    with ServerThread(config) as server:
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.goto(server.server.url)
        page.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 5", timeout=20000)
        page.evaluate(
            "() => { window.eiferStats.latency_ms = []; window.eiferStats.paints = 0; "
            "window.eiferStats.draw_latency_ms = []; "
            "window.eiferStats.received = {}; }"
        )
        peer: dict[str, Any] = {}
        peer_thread = threading.Thread(
            target=lambda: asyncio.run(raw_client(server.server.url, seconds, peer)), daemon=True
        )
        t0 = time.monotonic()
        peer_thread.start()
        time.sleep(seconds)
        stats = page.evaluate("() => JSON.parse(JSON.stringify(window.eiferStats))")
        elapsed = time.monotonic() - t0
        peer_thread.join(seconds + 5)
        page.close()
    stop.set()
    pub_thread.join(5)
    lat = stats["latency_ms"]
    result = {
        "rate_hz": rate_hz,
        "head_model": head,
        "viewport": list(viewport),
        "seconds": round(elapsed, 2),
        "page_muscle_updates_per_s": stats["received"].get("muscle", 0) / elapsed,
        "page_paints_per_s": stats["paints"] / elapsed,
        "page_latency_p50_ms": pct(lat, 50),
        "page_latency_p99_ms": pct(lat, 99),
        "page_latency_n": len(lat),
        "page_draw_latency_p50_ms": pct(stats["draw_latency_ms"], 50),
        "page_draw_latency_p99_ms": pct(stats["draw_latency_ms"], 99),
        "skipped_updates": stats.get("skipped", 0),
        "page_draw_ms": {k: round(v, 2) for k, v in stats.get("draw_ms", {}).items()},
        "peer_updates_per_s": peer.get("received", 0) / seconds,
        "peer_latency_p50_ms": pct(peer.get("latency_ms", []), 50),
        "peer_latency_p99_ms": pct(peer.get("latency_ms", []), 99),
    }
    result["page_over_peer_p50"] = result["page_latency_p50_ms"] / result["peer_latency_p50_ms"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[30.0, 60.0, 90.0])
    parser.add_argument("--viewport", type=int, nargs=2, default=[1600, 1200], metavar=("W", "H"))
    parser.add_argument(
        "--head", default="synthetic", help='head model for the page ("" = no head panel)'
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for rate in args.rates:
                print(f"measuring {rate:.0f} Hz for {args.seconds:.0f} s ...", flush=True)
                rows.append(run_rate(browser, rate, args.seconds, args.head, tuple(args.viewport)))
        finally:
            browser.close()
    header = (
        f"{'rate':>5} {'page upd/s':>10} {'paints/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'peer p50':>8} {'peer p99':>8} {'page/peer':>9} {'skipped':>7}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['rate_hz']:>5.0f} {r['page_muscle_updates_per_s']:>10.1f} "
            f"{r['page_paints_per_s']:>9.1f} {r['page_latency_p50_ms']:>7.1f} "
            f"{r['page_latency_p99_ms']:>7.1f} {r['peer_latency_p50_ms']:>8.2f} "
            f"{r['peer_latency_p99_ms']:>8.2f} {r['page_over_peer_p50']:>9.1f} "
            f"{r['skipped_updates']:>7}"
        )
        print("      draw ms per panel (moving average):", r["page_draw_ms"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "display_latency",
                "what": "bus publish (wall clock) -> requestAnimationFrame that drew the frame, headless "
                "Chromium with --disable-gpu (software raster); peer = raw WebSocket receive",
                "machine": {"platform": platform.platform(), "python": platform.python_version()},
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
