"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

`playwright install` cannot download a browser here, so the system's Chromium is launched with the
flags that keep it off the network. The `chromium` fixture (conftest.py) skips without it, or fails
under REQUIRE_SERVICES=1.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch(playwright):
    """Chromium launched headless from /usr/bin, with the flags that keep it off the network."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
