"""`ivuscal export`: write the fused ensemble as one ONNX graph and record it in the model card."""

from __future__ import annotations

from pathlib import Path

import click

from engine.model.weights import DEFAULT_WEIGHTS, load_ensemble
from engine.runtimes.onnx_export import OPSET, PRECISIONS, export_onnx, record_in_card


@click.command(name="export")
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ensemble weights (.safetensors); the shipped default model when omitted.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="ONNX file to write.")
@click.option("--precision", type=click.Choice(sorted(PRECISIONS)), default="fp32", show_default=True,
              help="fp16 runs the members in half precision (for TensorRT); input and outputs stay float32.")
@click.option("--opset", type=click.IntRange(min=18), default=OPSET, show_default=True, help="ONNX opset.")
@click.option("--no-card", is_flag=True, help="Do not record the graph in the model card.")
def command(model: Path | None, out: Path, precision: str, opset: int, no_card: bool) -> None:
    """Export the five members, their normalisation and their averaging to one ONNX graph.

    Input `polar` float32 (batch, depth, A-lines) in [0, 1]; outputs `probability` and `spread`
    (batch, A-lines). The graph is checked against the float32 PyTorch ensemble before it is kept
(max |diff| 1e-4 for fp32, 2e-2 for fp16).
    Runtimes export on first use by themselves; this command is for shipping or inspecting a graph.
    """
    ensemble = load_ensemble(model)
    result = export_onnx(ensemble, out, precision=precision, opset=opset)
    parity = f", max |diff| vs PyTorch fp32 {result.max_abs_diff:.1e}"
    click.echo(f"wrote {result.path} ({result.precision}, opset {result.opset}, sha256 {result.sha256[:16]}, "
               f"{result.seconds:.1f} s{parity})")
    if not no_card:
        card = record_in_card(model or DEFAULT_WEIGHTS, result)
        click.echo(f"recorded in {card}")
