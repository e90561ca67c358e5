"""A PNG of the live page, as a newcomer sees it (for the README and for tests), taken with the
same headless Chromium the display tests drive (:mod:`nodes.display.headless`).

    python -m nodes.display.screenshot --url http://127.0.0.1:8765/ --out display.png

It waits until the page is live (data arriving) and, with ``--wait-face`` (the default), until
the camera panel shows a picture, then lets the traces fill for ``--settle-s`` seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nodes.display.headless import CHROMIUM, CHROMIUM_ARGS
from streaming.errors import EiferError

__all__ = ["ScreenshotError", "save_screenshot"]


class ScreenshotError(EiferError):
    """No browser to take it with, or the page never showed live data."""


def save_screenshot(
    url: str,
    out: str | Path,
    *,
    width: int = 1600,
    height: int = 1200,
    wait_face: bool = True,
    settle_s: float = 2.0,
    timeout_s: float = 60.0,
) -> Path:
    """Open ``url`` in headless Chromium, wait for live data, save a full-page PNG at ``out``."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ScreenshotError(
            "screenshots need playwright: pip install 'eifer-live[browser]'"
        ) from None
    if not Path(CHROMIUM).is_file():
        raise ScreenshotError(f"screenshots need Chromium at {CHROMIUM} (apt-get install chromium)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wanted = "(window.eiferStats.received.muscle || 0) > 0"
    if wait_face:
        wanted += " && window.eiferStats.face.drawn > 0"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url, timeout=1e3 * timeout_s)
                page.wait_for_function(f"() => {wanted}", timeout=1e3 * timeout_s)
                time.sleep(settle_s)
                page.screenshot(path=str(out), full_page=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        what = "live data and a camera image" if wait_face else "live data"
        raise ScreenshotError(
            f"screenshot of {url}: no {what} within {timeout_s:g} s ({first})"
        ) from None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/", help="the display's page")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--settle-s", type=float, default=2.0, help="wait after data arrives")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument(
        "--no-wait-face", action="store_true", help="do not wait for a camera image"
    )
    args = parser.parse_args(argv)
    try:
        path = save_screenshot(
            args.url,
            args.out,
            width=args.width,
            height=args.height,
            wait_face=not args.no_wait_face,
            settle_s=args.settle_s,
            timeout_s=args.timeout_s,
        )
    except EiferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
