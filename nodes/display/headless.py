"""Headless Chromium settings for driving the page (tests, benchmark): Debian's chromium, never a
downloaded browser, with every background network feature off (this machine has no network)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
