#!/usr/bin/env bash
# Set up (.venv, CPU only) and run the live demo: simulated pullback -> engine -> live arcs -> report.
# Arguments go to `ivuscal demo` (e.g. --out DIR, --frames N, --fps N); see `ivuscal demo --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ivuscal demo "$@"
