"""`ivuscal synth`: generate a synthetic IVUS cohort (DICOM + calcium truth + manifest)."""

from __future__ import annotations

import click

from tools.simulator.appearance import RANGES
from tools.simulator.cohort import generate_cohort
from tools.simulator.config import DEVICES

MIXED = "mixed"


@click.command(name="synth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--patients", type=int, default=5, show_default=True, help="Number of synthetic patients.")
@click.option("--seed", type=int, default=0, show_default=True, help="Cohort seed (same seed, same files).")
@click.option("--frames", type=int, default=None, help="Fix the frames per pullback (default: 200-3000).")
@click.option("--device", type=click.Choice([MIXED, *DEVICES]), default=MIXED, show_default=True,
              help="Catheter style.")
@click.option("--fps", type=click.Choice([MIXED, "30", "60"]), default=MIXED, show_default=True,
              help="Frames per second.")
@click.option("--pullback-rate", type=click.Choice([MIXED, "0.5", "1.0"]), default=MIXED, show_default=True,
              help="Pullback speed in mm/s.")
@click.option("--color", type=click.Choice([MIXED, "gray", "rgb"]), default=MIXED, show_default=True,
              help="Grayscale export or RGB with coloured burnt-in annotations.")
@click.option("--format", "fmt", type=click.Choice([MIXED, "native", "jpeg"]), default=MIXED, show_default=True,
              help="Pixel encoding: native 8 bit or JPEG Baseline.")
@click.option("--exclude-device", type=click.Choice(list(DEVICES)), multiple=True,
              help="With --device mixed: never draw this style (repeatable; leave-one-style-out cohorts).")
@click.option("--appearance", type=click.Choice(sorted(RANGES)), default="standard", show_default=True,
              help="Console-setting ranges: standard (training) or stress (outside the training ranges).")
@click.option("--label-noise/--exact-labels", default=False, show_default=True,
              help="Labels with weak-expert noise (exact arcs are kept beside them).")
@click.option("--image-size", type=int, default=512, show_default=True, help="Frame width = height in pixels.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes generating pullbacks in parallel (the files do not depend on it).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(out_dir: str, patients: int, seed: int, frames: int | None, device: str, fps: str,
            pullback_rate: str, color: str, fmt: str, exclude_device: tuple[str, ...], appearance: str,
            label_noise: bool, image_size: int, workers: int, quiet: bool) -> None:
    """Generate a synthetic IVUS cohort as DICOM with exact per-angle calcium truth."""
    fixed: dict = {"label_noise": label_noise, "image_size": image_size, "appearance": appearance}
    if device != MIXED:
        fixed["device"] = device
    elif exclude_device:
        fixed["devices"] = tuple(name for name in DEVICES if name not in exclude_device)
    if fps != MIXED:
        fixed["fps"] = float(fps)
    if pullback_rate != MIXED:
        fixed["pullback_rate_mm_s"] = float(pullback_rate)
    if color != MIXED:
        fixed["color"] = color
    if fmt != MIXED:
        fixed["jpeg"] = fmt == "jpeg"
    manifest = generate_cohort(out_dir, patients, seed, n_frames=frames, quiet=quiet, workers=workers, **fixed)
    click.echo(f"wrote {manifest}")
