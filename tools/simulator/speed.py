"""Measure simulator throughput (run: python -m tools.simulator.speed [N_FRAMES]).

Reports, per device style, 512 x 512 frames per second by wall clock and by this process's
CPU time (the two differ when other processes share the cores), the one-off setup (scene,
truth, speckle bank), a per-stage breakdown, and the cohort writer with 1 and 2 worker processes.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.simulator.cohort import generate_cohort
from tools.simulator.config import DEVICES, PullbackConfig
from tools.simulator.pullback import iter_pullback


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def frames_per_second(config: PullbackConfig, seed: int = 0) -> dict[str, float]:
    """Setup seconds and frames/s (wall and CPU) of generating `config` in memory, chunk by chunk."""
    w0, c0 = _clock()
    stream = iter_pullback(config, seed)
    w1, c1 = _clock()
    for _ in stream:
        pass
    w2, c2 = _clock()
    n = config.n_frames
    return {"setup_wall_s": w1 - w0, "setup_cpu_s": c1 - c0, "fps_wall": n / (w2 - w1), "fps_cpu": n / (c2 - c1)}


def stage_breakdown(config: PullbackConfig, seed: int = 0, n: int = 128) -> dict[str, float]:
    """CPU milliseconds per frame of each stage of the frame loop."""
    stream = iter_pullback(config, seed)
    renderer, idx = stream.renderer, np.arange(min(n, config.n_frames))
    t = time.process_time()
    rays = stream.scene.rays(idx, renderer.theta_d)
    t_rays = time.process_time() - t
    polars = []
    t = time.process_time()
    for i in range(len(idx)):
        polars.append(renderer._render_one(rays, i, int(idx[i])))  # measuring the stage itself
    t_render = time.process_time() - t
    frames = np.empty((len(idx), config.image_size, config.image_size), np.uint8)
    t = time.process_time()
    for i, polar in enumerate(polars):
        stream.scan.convert(polar, frames[i])
    t_scan = time.process_time() - t
    t = time.process_time()
    if stream.annotator is not None:
        stream.annotator.apply(frames, idx)
    t_annotate = time.process_time() - t
    per = 1000.0 / len(idx)
    return {"scene_rays_ms": t_rays * per, "acoustics_ms": t_render * per, "scan_conversion_ms": t_scan * per,
            "annotations_ms": t_annotate * per}


def cohort_frames_per_second(n_frames: int, workers: int, jpeg: bool = False) -> tuple[float, float]:
    """(frames/s by wall clock, frames per CPU-second over all processes) of `generate_cohort`
    writing gray 512 x 512 DICOM to a temp folder."""
    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    with tempfile.TemporaryDirectory() as folder:
        w, c = time.perf_counter(), cpu()
        manifest = generate_cohort(Path(folder), 2, seed=1, n_frames=n_frames, workers=workers, color="gray",
                                   jpeg=jpeg)
        wall, used = time.perf_counter() - w, cpu() - c
        total = json.loads(manifest.read_text())["total_frames"]
    return total / wall, total / used


def main(n_frames: int = 512) -> None:
    for device in DEVICES:
        config = PullbackConfig(n_frames=n_frames, device=device, stent=True, calcium_fraction=0.5)
        result = frames_per_second(config)
        print(f"{device:13s} " + " ".join(f"{k}={v:.2f}" for k, v in result.items()))
    breakdown = stage_breakdown(PullbackConfig(n_frames=n_frames, stent=True, calcium_fraction=0.5))
    print("stages (rotational40, CPU ms/frame): " + " ".join(f"{k}={v:.2f}" for k, v in breakdown.items()))
    for workers, jpeg in ((1, False), (2, False), (1, True)):
        wall, per_cpu = cohort_frames_per_second(n_frames // 2, workers, jpeg)
        print(f"cohort writer, {workers} worker(s), {'JPEG' if jpeg else 'native'}: {wall:.0f} frames/s wall, "
              f"{per_cpu:.0f} frames per CPU-second")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
