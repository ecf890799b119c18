"""The system Chromium (Debian's `chromium` package) for Playwright: tests and `ivuscal bench view`.

Playwright's own browser download is not used (and not reachable here): it drives this
executable, headless, with no background network traffic, so the page can only reach loopback.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """$IVUSCAL_CHROMIUM, else `chromium` on PATH (scripts/system-packages.txt installs it), else None."""
    return os.environ.get("IVUSCAL_CHROMIUM") or shutil.which("chromium")


def launch_args() -> dict[str, Any]:
    """Keyword arguments of `playwright.chromium.launch`; raises FileNotFoundError without a Chromium."""
    path = chromium_path()
    if path is None:
        raise FileNotFoundError(
            "no Chromium found: install Debian's 'chromium' package (scripts/system-packages.txt)"
            " or set IVUSCAL_CHROMIUM"
        )
    return {"executable_path": path, "headless": True, "args": list(FLAGS)}
