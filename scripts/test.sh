#!/usr/bin/env bash
# Set up (CPU only, plus the Debian packages some tests need), lint (ruff), type-check engine/
# (mypy) and run the test suite. Configuration of all three: pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
