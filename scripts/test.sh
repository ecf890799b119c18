#!/usr/bin/env bash
# Set up (CPU only, plus the Debian packages some tests need) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
