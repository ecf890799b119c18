"""IVUS pullback simulator with exact per-angle calcium truth (docs/simulator.md).

Public API:
- `PullbackConfig`, `LesionSpec`, `DEVICES`: what to simulate.
- `simulate_pullback(config, seed) -> SimulatedPullback` (in memory) and
  `iter_pullback(config, seed, chunk_frames=64)` (chunks of (start, uint8 frames), `.truth`).
- `PullbackTruth`, `write_truth`, `load_truth`: per-frame calcium arcs, labels, lesions, borders.
- `write_pullback(path, sim_or_stream)`: DICOM (+ truth beside it); `generate_cohort(...)`.
"""

from tools.simulator.cohort import generate_cohort
from tools.simulator.config import DEVICES, LesionSpec, PullbackConfig
from tools.simulator.dicom_writer import SyntheticPatient, write_pullback
from tools.simulator.pullback import Calibration, SimulatedPullback, iter_pullback, simulate_pullback
from tools.simulator.truth import Lesion, PullbackTruth, load_truth, truth_paths, write_truth

__all__ = [
    "DEVICES", "Calibration", "Lesion", "LesionSpec", "PullbackConfig", "PullbackTruth", "SimulatedPullback",
    "SyntheticPatient", "generate_cohort", "iter_pullback", "load_truth", "simulate_pullback", "truth_paths",
    "write_pullback", "write_truth",
]
