"""The `ivuscal` command line: one entry point whose subcommands live beside the code they drive.

Subcommands are imported only when invoked, so `ivuscal --help` and light commands start fast.
Errors follow docs/conventions.md: `InputError` -> one line on stderr and exit 2; anything else ->
exit 1 (traceback only with --debug).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from engine.errors import InputError

# Packages of the optional extras (pyproject.toml) -> the extra that installs them.
EXTRA_OF_PACKAGE = {"torch": "train", "onnx": "export", "onnxscript": "export"}

# name -> (module, attribute, one-line help). Each module owns its command.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "inspect": ("engine.commands.inspect", "command", "Describe a DICOM pullback (no patient identifiers)."),
    "synth": ("tools.simulator.cli", "command", "Generate a synthetic IVUS cohort as DICOM with calcium truth."),
    "train": ("training.cli", "train_command", "Train the 5-fold cross-validated ensemble."),
    "evaluate": ("training.cli", "evaluate_command", "Score models and the ensemble against truth."),
    "calibrate-reliability": ("training.reliability", "calibrate_command", "Calibrate the model's reliability flag."),
    "generalise": ("training.cli", "generalise_command", "Leave-one-style-out: train without a style, test on it."),
    "explain": ("engine.commands.explain", "command", "Render a frame with its predicted arc and attention map."),
    "analyze": ("engine.commands.analyze", "command", "Analyse a recorded pullback offline and write a report."),
    "tune-filter": ("training.tune_filter", "command", "Grid-search the post-processing window against truth."),
    "export": ("training.export", "command", "Export the fused ensemble to ONNX."),
    "serve": ("engine.streaming.cli", "command", "Run the live streaming engine over ZeroMQ."),
    "keys": ("engine.streaming.cli", "keys_command", "Create CURVE certificate pairs for the engine and its clients."),
    "replay": ("tools.replay", "command", "Publish a recorded pullback as a live stream."),
    "listen": ("tools.listen", "command", "Subscribe to the engine's results and show arcs live."),
    "view": ("engine.view.cli", "command", "Live web view of a running engine, with /metrics."),
    "demo": ("tools.demo", "command", "End-to-end live demo on the default model and a generated pullback."),
    "batch": ("engine.batch.cli", "command", "Analyse an archive of pullbacks on a Dask cluster (local or existing)."),
    "bench": ("bench.cli", "command", "Latency and throughput benchmarks."),
    "dicom-node": ("engine.node.cli", "command", "DICOM storage node: analyse received pullbacks, send SR + arcs on."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, attribute, _ = SUBCOMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                return _unavailable(cmd_name)
            package = (error.name or "").partition(".")[0]
            if package in EXTRA_OF_PACKAGE:
                return _unavailable(cmd_name, f"needs {package}: pip install 'ivuscal[{EXTRA_OF_PACKAGE[package]}]'")
            raise
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, reason: str = "is not available in this build") -> click.Command:
    @click.command(name=name, help=f"Not available here: {reason}.",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def unavailable() -> None:
        raise click.UsageError(f"'{name}' {reason}")

    return unavailable


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivuscal")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Real-time calcium detection in intravascular ultrasound (IVUS)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit status of docs/conventions.md."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="ivuscal", standalone_mode=False)
    except InputError as error:
        if debug:
            raise
        click.echo(f"ivuscal: error: {error}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("ivuscal: aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return 2
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # an internal failure, not the user's input
        if debug:
            raise
        click.echo(
            f"ivuscal: internal error: {type(error).__name__}: {error} (rerun with --debug for details)", err=True
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
