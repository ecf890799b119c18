"""One click decorator that gives analyze, serve, bench and evaluate the same runtime options.

    @click.command()
    @runtime_options
    def command(backend, model, threads, device, **kwargs):
        runtime = create_runtime(backend, model, device=device, threads=threads)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from engine.runtimes import BACKENDS

F = TypeVar("F", bound=Callable)


def runtime_options(command: F) -> F:
    """Add --backend, --model, --device and --threads to a click command."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(BACKENDS),
            default="auto",
            show_default=True,
            help="Inference backend; 'auto' is TensorRT on a CUDA GPU when installed, else ONNX Runtime on the CPU.",
        ),
        click.option(
            "--model",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Ensemble weights (.safetensors); the shipped default model when omitted.",
        ),
        click.option("--device", default=None, help="'cpu', 'cuda' or 'cuda:N' (the backend's default when omitted)."),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="CPU inference threads (default: the physical cores available).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
