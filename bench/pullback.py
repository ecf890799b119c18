"""The recorded pullback the benchmarks replay: a simulated one, generated once and cached.

`cached_pullback(cache_dir, frames)` writes a DICOM pullback with the simulator
(`tools.simulator`) the first time and reuses it afterwards. It is written under a temporary
name and renamed when complete, so an interrupted generation is redone rather than trusted.
Speed does not depend on the truth, so none is written.
"""

from __future__ import annotations

from pathlib import Path

from engine.progress import progress

SEED = 2024


def pullback_path(cache_dir: Path, frames: int, image_size: int, seed: int = SEED) -> Path:
    return Path(cache_dir) / "pullbacks" / f"sim-{frames}f-{image_size}px-seed{seed}.dcm"


def cached_pullback(cache_dir: Path, frames: int, image_size: int = 512, seed: int = SEED, quiet: bool = True) -> Path:
    """A simulated 30 fps grayscale pullback of `frames` frames, `image_size` pixels square, cached."""
    path = pullback_path(cache_dir, frames, image_size, seed)
    if path.is_file():
        return path
    from tools.simulator import PullbackConfig, iter_pullback, write_pullback  # only to generate

    path.parent.mkdir(parents=True, exist_ok=True)
    config = PullbackConfig(n_frames=frames, image_size=image_size, fps=30.0)
    with progress(f"simulating a {frames}-frame pullback (once)", frames, quiet) as bar:
        write_pullback(path, iter_pullback(config, seed), with_truth=False, on_chunk=bar.advance)  # atomic
    return path
