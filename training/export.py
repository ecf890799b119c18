"""`ivuscal export`: write the fused ensemble as one ONNX graph; name it in the model card only when asked."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from engine.model.weights import DEFAULT_WEIGHTS, load_ensemble
from engine.runtimes import graph
from engine.runtimes.onnx_export import PRECISIONS, export_onnx


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
@click.option("--opset", type=click.IntRange(min=18), default=graph.OPSET, show_default=True, help="ONNX opset.")
@click.option("--record-in-card", is_flag=True,
              help="Name the graph (file, sha256) in the model's card, so that runtimes use it. Without this flag "
                   "no model file is touched.")
def command(model: Path | None, out: Path, precision: str, opset: int, record_in_card: bool) -> None:
    """Export the five members, their normalisation and their averaging to one ONNX graph.

    Input `polar` float32 (batch, depth, A-lines) in [0, 1]; outputs `probability` and `spread`
    (batch, A-lines). The graph is checked against the float32 PyTorch ensemble before it is kept
    (max |diff| 1e-4 for fp32, 2e-2 for fp16). Runtimes find the graph the card names, or export into
    the cache by themselves; regenerate the shipped graph with
    `ivuscal export --out engine/model/default/ensemble.onnx --record-in-card`.
    """
    ensemble = load_ensemble(model)
    result = export_onnx(ensemble, out, precision=precision, opset=opset)
    parity = f", max |diff| vs PyTorch fp32 {result.max_abs_diff:.1e}"
    click.echo(f"wrote {result.path} ({result.precision}, opset {result.opset}, sha256 {result.sha256[:16]}, "
               f"{result.seconds:.1f} s{parity})")
    if record_in_card:
        command = shlex.join(["ivuscal", "export", *(["--model", str(model)] if model else []), "--out", str(out),
                              "--precision", precision, "--opset", str(opset), "--record-in-card"])
        card = graph.record_in_card(model or DEFAULT_WEIGHTS, result.path, result.sha256, result.precision,
                                    result.opset, command=command)
        click.echo(f"recorded in {card}")

