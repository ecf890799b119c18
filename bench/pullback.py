"""The recorded pullback the benchmarks replay: a simulated one, generated once and cached.

`cached_pullback(cache_dir, frames)` writes a DICOM pullback with the simulator
(`tools.simulator`) the first time and reuses it afterwards; a `.complete` marker beside the
file says the write finished, so an interrupted generation is redone rather than trusted.
"""

from __future__ import annotations

from pathlib import Path

from engine.progress import progress

SEED = 2024


def pullback_path(cache_dir: Path, frames: int, image_size: int, seed: int = SEED) -> Path:
    return Path(cache_dir) / "pullbacks" / f"sim-{frames}f-{image_size}px-seed{seed}.dcm"


def cached_pullback(cache_dir: Path, frames: int, image_size: int = 512, seed: int = SEED, quiet: bool = True) -> Path:
    """A simulated pullback of `frames` frames (grayscale, `image_size` square), cached."""
    path = pullback_path(cache_dir, frames, image_size, seed)
    marker = path.with_name(path.name + ".complete")
    if path.is_file() and marker.is_file():
        return path
    from tools.simulator import PullbackConfig, iter_pullback, write_pullback  # noqa: PLC0415 - only to generate

    path.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    stream = iter_pullback(PullbackConfig(n_frames=frames, image_size=image_size), seed)
    with progress(f"simulating {frames}-frame pullback", frames, quiet) as bar:
        write_pullback(path, _counted(stream, bar))
    marker.touch()
    return path


class _counted:
    """Wraps a simulator stream so that each yielded chunk advances the progress bar."""

    def __init__(self, stream, bar) -> None:
        self._stream = stream
        self._bar = bar

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __iter__(self):
        for start, frames in self._stream:
            self._bar.advance(len(frames))
            yield start, frames
