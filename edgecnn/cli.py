"""The ``edgecnn`` command line: parses options, calls the library, prints.

Every command is a thin wrapper over a library function. Errors the user can fix
(:class:`EdgecnnError`) are printed as one line with their exit code; ``--debug``
shows the traceback of anything.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from . import tfquiet
from .errors import EXIT_BAD_INPUT, EdgecnnError

PathArg = click.Path(path_type=Path)


class EdgecnnGroup(click.Group):
    """Turns exceptions into one-line messages and exit codes."""

    def main(self, *args, **kwargs):  # noqa: D401 - click API
        kwargs["standalone_mode"] = False
        debug = "--debug" in sys.argv[1:]
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            code = 130
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except EdgecnnError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            code = 130
        except Exception as exc:  # a bug: still one line unless --debug
            if debug:
                traceback.print_exc()
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(f"error: unexpected {type(exc).__name__}: {line} (run with --debug for the traceback)", err=True)
            code = 3
        sys.exit(code or 0)


@click.group(cls=EdgecnnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="Show TensorFlow's own log lines.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="edgecnn")
def cli(verbose: bool, debug: bool) -> None:
    """Train a Keras image classifier, export it to TFLite and ONNX, verify, benchmark and predict."""
    tfquiet.set_verbose(verbose)


def main() -> None:
    cli(prog_name="edgecnn")


@cli.command()
@click.option("--out", type=PathArg, default=Path("models/fashion-cnn"), show_default=True, help="Where to write the model and its artifacts.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--patience", type=int, default=2, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--data-dir", type=PathArg, default=None, help="Folder with the Fashion-MNIST *-ubyte.gz files.")
@click.option("--limit", type=int, default=None, help="Train on the first N training images only.")
def train(out, epochs, batch_size, patience, seed, data_dir, limit) -> None:
    """Train the reference CNN on Fashion-MNIST."""
    from .train import TrainConfig, train as run_train

    result = run_train(TrainConfig(out=out, epochs=epochs, batch_size=batch_size, patience=patience,
                                   seed=seed, data_dir=data_dir, limit=limit))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    m = result.metrics
    click.echo(f"trained {m['epochs_run']} epochs (best {m['best_epoch']}) in {m['wall_time_s']:.0f} s: "
               f"val_accuracy {m['val_accuracy']:.4f}, test_accuracy {m['test_accuracy']:.4f} -> {result.model_path}")


@cli.command()
@click.option("--model", "model_path", type=PathArg, default=None, show_default="models/fashion-cnn/model.keras",
              help="A .keras file; without it, the reference architecture (untrained).")
@click.option("--out", type=PathArg, default=None, help="Folder for architecture.png (default: the model's folder).")
@click.option("--unsafe", is_flag=True, help="Allow Lambda layers (only for files you trust).")
def summary(model_path, out, unsafe) -> None:
    """Print the layer table and draw the architecture with shapes."""
    from .summary import summarize

    result = summarize(model_path, out=out, unsafe=unsafe)
    click.echo(result.table)
    if result.diagram:
        click.echo(f"architecture diagram -> {result.diagram}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
