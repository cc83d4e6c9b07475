"""A real headless Chromium (Debian's package) driven by Playwright.

Playwright's own browser download cannot work on these machines, so the browser is the one
the system has. Without it the browser tests are skipped, saying how to install it; CI sets
REQUIRE_BROWSER=1, which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
)
INSTALL = "apt-get install -y --no-install-recommends chromium-headless-shell"
# Where the screenshots are kept, for people to look at (CI keeps the folder as artifacts).
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    found = [configured] if configured else [*CANDIDATES, shutil.which("chromium") or ""]
    return next((path for path in found if path and Path(path).is_file()), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = f"no Chromium on this machine: the browser tests need it ({INSTALL})"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest_asyncio.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # As root (as CI runs) Chromium refuses to start with its sandbox.
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
