"""System programs some tests need (scripts/system-packages.txt): skip without them, fail under CI=true."""

from __future__ import annotations

import os
import shutil

import pytest


def require_program(command: str, package: str) -> str:
    """The path of `command`; skips the test when it is missing, fails instead when CI=true."""
    path = shutil.which(command)
    if path is None:
        reason = f"{command} not installed (Debian package {package}; scripts/test.sh installs it as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return path
