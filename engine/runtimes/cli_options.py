"""One click decorator that gives analyze, serve, bench and evaluate the same runtime options.

    @click.command()
    @runtime_options
    def command(backend, model, threads, device, precision, **kwargs):
        runtime = create_runtime(backend, model, device=device, threads=threads, precision=precision)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from engine.runtimes import BACKENDS

F = TypeVar("F", bound=Callable)


precision_option = click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "bf16"]),
    default=None,
    help="Inference precision: fp32 on the CPU; fp16 (default on CUDA), bf16 (torch) or fp32 on a GPU.",
)


def runtime_options(command: F) -> F:
    """Add --backend, --model, --device, --precision and --threads to a click command."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(BACKENDS),
            default="auto",
            show_default=True,
            help="Inference backend; 'auto' is TensorRT on a CUDA GPU when installed, else torch on CUDA, "
            "else ONNX Runtime on the CPU.",
        ),
        click.option(
            "--model",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Ensemble weights (.safetensors); the shipped default model when omitted.",
        ),
        click.option("--device", default=None, help="'cpu', 'cuda' or 'cuda:N' (the backend's default when omitted)."),
        precision_option,
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
