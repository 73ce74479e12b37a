"""The ``edgecnn`` command line: parses options, calls the library, prints.

Every command is a thin wrapper over a library function. Errors the user can fix
(:class:`EdgecnnError`) are printed as one line with their exit code; ``--debug``
shows the traceback of anything.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import click

from . import tfquiet
from .errors import EdgecnnError, first_line
from .export import ALL as ALL_FORMATS, DEFAULT_MAX_ACCURACY_DROP, FORMATS as EXPORT_FORMATS  # light: TF lazily
from .preprocess import INPUT_RANGES, RESIZE_MODES  # light: numpy and Pillow
from .progress import Progress
from .quantize import CHOOSERS  # light: TF lazily
from .runtime.base import MAX_THREADS  # light: numpy only

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
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click.ClickException as exc:  # bad option values, unknown options: one line too
            hint = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) else ""
            click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
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
            click.echo(f"error: unexpected {type(exc).__name__}: {first_line(exc)} (run with --debug for the traceback)", err=True)
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


DATA_HELP = ("The labelled images: class folders (DIR/<class>/* or DIR/train|test[|val]/<class>/*), a .npz "
             "('x'/'y', optional 'x_test'/'y_test', 'class_names') or the Fashion-MNIST IDX folder.")


#: Seconds between two layer-progress lines when stderr is a log, not a terminal: a few lines a minute at most.
LOG_EVERY_S = 5.0


def layer_progress() -> Progress:
    """Shows the int8 formats' per-layer measurements on stderr with the seconds each step has taken and an
    estimate of those left (at the step's pace so far): one line
    rewritten in place on a terminal; in a log, a step's first and last lines and one every LOG_EVERY_S between."""
    tty = sys.stderr.isatty()
    step = {"what": None, "started": 0.0, "shown": 0.0, "width": 0}

    def show(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if what != step["what"]:
            step.update(what=what, started=now, shown=now)
        elif not tty and done < total and now - step["shown"] < LOG_EVERY_S:
            return
        step["shown"] = now
        elapsed = now - step["started"]
        left = f", about {elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
        line = f"{what}: {done}/{total} layers ({elapsed:.0f} s{left})"
        click.echo(f"\r{line:<{step['width']}}" if tty else line, err=True, nl=not tty or done == total)
        step["width"] = 0 if done == total else len(line)  # a finished step's line stays; the next starts anew

    return show


def echo_err(line: str) -> None:
    click.echo(line, err=True)


def data_option(*aliases: str, help: str = DATA_HELP):
    """The one data option of every command; ``aliases`` keep older option names working."""
    return click.option("--data", *aliases, "data", type=PathArg, default=None, help=help)


def image_size(ctx, param, value: str | None) -> tuple[int, int] | None:
    """HxW (or one number for a square) -> (height, width)."""
    if value is None:
        return None
    try:
        sides = tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2:
        raise click.BadParameter(f"expected HxW such as 28x28, got {value!r}", ctx=ctx, param=param)
    return sides  # type: ignore[return-value]


def training_options(out_help: str):
    """The options of the training recipe, shared by ``train`` and ``pipeline``."""
    options = [
        click.option("--out", type=PathArg, default=Path("models/fashion-cnn"), show_default=True, help=out_help),
        click.option("--epochs", type=int, default=20, show_default=True),
        click.option("--batch-size", type=int, default=32, show_default=True),
        click.option("--patience", type=int, default=2, show_default=True, help="Early-stopping patience (epochs)."),
        click.option("--seed", type=int, default=42, show_default=True),
        data_option("--data-dir", help=DATA_HELP + "  [default: Fashion-MNIST]"),
        click.option("--limit", type=int, default=None, help="Train on the first N training images only."),
        click.option("--image-size", callback=image_size, default=None,
                     help="Resize class-folder images to HxW (e.g. 28x28).  [default: their most common size]"),
        click.option("--channels", type=click.Choice(["1", "3"]), default=None,
                     help="1 (gray) or 3 (RGB).  [default: 1 when every image is gray]"),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@cli.command()
@training_options("Where to write the model and its artifacts.")
def train(out, epochs, batch_size, patience, seed, data, limit, image_size, channels) -> None:
    """Train the reference CNN on Fashion-MNIST or your own images (sized to them)."""
    from .train import TrainConfig, train as run_train

    result = run_train(TrainConfig(out=out, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed,
                                   data=data, limit=limit, image_size=image_size,
                                   channels=int(channels) if channels else None))
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


@cli.command()
@click.option("--model", "model_path", type=PathArg, default=None, show_default="models/fashion-cnn/model.keras",
              help="The .keras file to export.")
@click.option("--format", "formats", type=click.Choice([*EXPORT_FORMATS, ALL_FORMATS]), multiple=True,
              help="Export format; repeat for several.  [default: all]")
@click.option("--out", type=PathArg, default=None, help="Folder for the exports and manifest.json (default: the model's folder).")
@click.option("--calibration-samples", type=int, default=500, show_default=True,
              help="Training images (fixed seed) that calibrate the int8 exports.")
@data_option("--data-dir", "--calibration-data",
             help=DATA_HELP + " Calibration from its training split, the reference from its test split.  "
                  "[default: the data the model was trained on, else Fashion-MNIST when the model fits it]")
@click.option("--input-range", type=click.Choice(INPUT_RANGES), default=None,
              help="The pixel range the model reads, when no leading Rescaling/Normalization layer says.  [default: 0-1]")
@click.option("--resize", type=click.Choice(RESIZE_MODES), default=None,
              help="How images of another size are fitted.  [default: fit for Fashion-MNIST, else center-crop]")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (13-18).")
@click.option("--unsafe", is_flag=True, help="Allow Lambda layers (only for files you trust).")
@click.option("--batch", type=int, default=None,
              help="1: a static batch-1 signature, for runtimes that cannot resize (LiteRT.js, microcontrollers, "
                   "some NPUs).  [default: a dynamic batch]")
@click.option("--max-accuracy-drop", type=float, default=DEFAULT_MAX_ACCURACY_DROP, show_default=True,
              help="tflite-int8, onnx-int8: points of validation accuracy int8 may lose; layers stay float until "
                   "it holds (exit 1 when no mix does).")
@click.option("--all-int8", is_flag=True,
              help="tflite-int8, onnx-int8: quantize every layer, no measurement (ONNX keeps its float stem).")
@click.option("--no-latency", is_flag=True,
              help="tflite-int8, onnx-int8: choose by accuracy alone, without timing each layer (the same choice on "
                   "any machine; no layer kept float for speed).")
def export(model_path, formats, out, calibration_samples, data, input_range, resize, opset, unsafe, batch,
           max_accuracy_drop, all_int8, no_latency) -> None:
    """Export a Keras model to TFLite (fp32, fp16, dynamic, int8, int16x8), ONNX (fp32, int8) and ORT Mobile
    (fp32, int8), described by manifest.json."""
    from .export import export_model, resolve_formats

    count = len(resolve_formats(formats or (ALL_FORMATS,)))
    done = []

    def progress(name: str, stage: str) -> None:
        if stage != "start":
            return
        if name == "reference":
            click.echo("computing the Keras reference probabilities on the test set ...", err=True)
            return
        done.append(name)
        click.echo(f"[{len(done)}/{count}] exporting {name} -> {EXPORT_FORMATS[name].file} ...", err=True)

    result = export_model(model_path, formats or (ALL_FORMATS,), out, data=data,
                          calibration_samples=calibration_samples, opset=opset, unsafe=unsafe, batch=batch,
                          input_range=input_range, resize=resize, max_accuracy_drop=None if all_int8 else max_accuracy_drop,
                          measure_latency=not no_latency, on_progress=progress,
                          on_layer_progress=layer_progress())
    click.echo(result.table())
    click.echo(f"manifest -> {result.manifest_path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for name, why in result.failed.items():
        click.echo(f"FAIL {name} not written: {why}", err=True)
    for line in result.missed_budgets:
        click.echo(f"FAIL {line}", err=True)
    if result.missed_budgets or result.failed:
        from .errors import EXIT_FAILED

        raise SystemExit(EXIT_FAILED)


@cli.command()
@click.option("--model", "model_path", type=PathArg, default=None,
              help="Keras model to explain (default: models/fashion-cnn/model.keras).")
@click.option("--format", "formats", type=click.Choice(list(CHOOSERS)), multiple=True,
              help="int8 format to explain; repeat for several.  [default: all of them]")
@click.option("--max-accuracy-drop", type=float, default=DEFAULT_MAX_ACCURACY_DROP, show_default=True,
              help="Points of validation accuracy int8 may lose (the choice the table proposes).")
@click.option("--calibration-samples", type=int, default=500, show_default=True)
@data_option("--data-dir", "--calibration-data")
@click.option("--input-range", type=click.Choice(INPUT_RANGES), default=None,
              help="The pixel range the model reads, when no leading Rescaling/Normalization layer says.  [default: 0-1]")
@click.option("--no-latency", is_flag=True, help="Skip timing each layer (faster; no latency columns or reasons).")
@click.option("--json", "json_path", type=PathArg, default=None, help="Also write the table to this JSON file.")
@click.option("--unsafe", is_flag=True, help="Allow Lambda layers (only for files you trust).")
def explain(model_path, formats, max_accuracy_drop, calibration_samples, data, input_range, no_latency, json_path,
            unsafe) -> None:
    """Per-layer int8 diagnosis (TFLite, ONNX): each layer's error, latency and weights, worst first, and the
    precision mixed precision gives it. Exit 1 when no mix meets the accuracy budget."""
    from .bundle.files import MODEL_FILE, default_bundle
    from .errors import EXIT_FAILED
    from .fileio import write_json
    from .explain import explain_json, explain_model, explain_tables

    choices, validation = explain_model(model_path or default_bundle() / MODEL_FILE,
                                        formats=formats or None, max_accuracy_drop=max_accuracy_drop,
                                        calibration_samples=calibration_samples, data=data, input_range=input_range,
                                        measure_latency=not no_latency, unsafe=unsafe, on_progress=layer_progress())
    click.echo(explain_tables(choices))
    if json_path is not None:
        write_json(json_path, explain_json(choices, validation))
    if not all(choice.met for choice in choices.values()):
        raise SystemExit(EXIT_FAILED)


@cli.command()
@click.argument("targets", nargs=-1, type=PathArg)
@click.option("--reference", type=PathArg, default=None,
              help="Keras model to compare with (default: the bundle's model.keras, or its reference_probs.npy "
                   "without TensorFlow).")
@click.option("--json", "json_path", type=PathArg, default=None, help="Also write every result to this JSON file.")
@click.option("--atol", type=float, default=None, help="Max abs probability difference allowed, for every export.")
@click.option("--min-agreement", type=float, default=None, help="Min top-1 agreement in percent, for every export.")
@click.option("--max-accuracy-drop", type=float, default=None,
              help="Max accuracy drop in percentage points, for every export.")
@data_option("--data-dir", help=DATA_HELP + " Its test split is used.  [default: the data recorded at export, "
                                           "else the bundle's test_set.npz]")
@click.option("--arch", type=click.Choice(["arm64"]), default=None,
              help="Also run every export on emulated ARM cores (QEMU user-mode; needs root, built once: see "
                   "'edgecnn arm64 setup').")
@click.option("--cpu", "cpus", default=None, metavar="LIST",
              help="With --arch: the comma-separated QEMU cores to run on (cortex-a53, cortex-a72, cortex-a76, "
                   "neoverse-n1, max).  [default: cortex-a53,cortex-a76]")
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="With --arch: run ARM on this many test images spread over the set (emulation is about 25x "
                   "slower than a chip; a subset never counts as verified on that core).  [default: all]")
@click.pass_context
def verify(ctx, targets, reference, json_path, atol, min_agreement, max_accuracy_drop, data, arch, cpus,
           images) -> None:
    """Check exports against the Keras model on the whole test set (TARGETS: bundle folders or model files;
    default: every export of models/fashion-cnn). Exit 0 when all pass their gate, 1 when any fails."""
    from .errors import EXIT_FAILED
    from .verify import format_report, verify as run_verify

    if (cpus or images) and not arch:
        raise click.UsageError("--cpu and --images go with --arch arm64")
    report = run_verify(targets or None, reference=reference, atol=atol, min_agreement=min_agreement,
                        max_accuracy_drop=max_accuracy_drop, data=data, json_path=json_path, arch=arch,
                        cpus=[c.strip() for c in cpus.split(",") if c.strip()] if cpus else None, images=images,
                        say=echo_err)
    click.echo(format_report(report))
    if not report.passed:
        ctx.exit(EXIT_FAILED)


@cli.group()
def arm64() -> None:
    """The emulated ARM environment 'verify --arch arm64' runs in."""


@arm64.command("setup")
@click.argument("folder", type=PathArg, required=False)
def arm64_setup(folder) -> None:
    """Build (once) the Debian arm64 root and the aarch64 wheels of the runtime versions FOLDER's exports record
    (default: models/fashion-cnn; this machine's versions without a manifest). Needs root; cached in
    ~/.cache/edgecnn/arm64 (or $EDGECNN_ARM64_CACHE) and reused offline."""
    from .arm64 import setup
    from .bundle.targets import resolve_targets
    from .runtime import backend_class

    recorded = []
    for targets in resolve_targets([folder] if folder else None).values():
        for target in targets:
            backend_class(target.path)  # a file of no runtime is a one-line error, not this machine's versions
            recorded.append(target.entry.versions if target.entry else None)
    for versions in {tuple(sorted((v or {}).items())): v for v in recorded}.values():
        env = setup(versions, say=echo_err)
        click.echo(f"arm64 ready: {env.root} ({', '.join(f'{k} {v}' for k, v in env.pins.items())}; {env.emulator})")


@cli.command()
@click.argument("folder", type=PathArg, required=False)
@data_option("--data-dir", help=DATA_HELP + " Its test split gives the samples.  [default: as recorded at export]")
@click.option("--readme", type=PathArg, default=None,
              help="Also rewrite the figures block of this README (between <!-- figures:start/end -->).")
def report(folder, data, readme) -> None:
    """Write FOLDER/report.html (default: models/fashion-cnn): one self-contained page with the model, training,
    exports, errors and samples."""
    from .render.report import write_report

    click.echo(f"report -> {write_report(folder, data=data)}")
    if readme:
        from .render.readme import update_readme

        changed = update_readme(readme, folder)
        click.echo(f"figures in {readme} {'updated' if changed else 'already up to date'}")


@cli.command()
@click.argument("images", nargs=-1, required=True, type=PathArg)
@click.option("--model", "model_path", type=PathArg, default=None, show_default="models/fashion-cnn/model_int8.tflite",
              help="A .tflite, .onnx or .keras model.")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Classes shown per image.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Invert images so the garment is light on dark (auto: decide from the border).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--plot", type=PathArg, default=None, help="Write a bar chart of class probabilities (one panel per image).")
@click.option("--threads", type=click.IntRange(min=1, max=MAX_THREADS), default=None,
              help="Runtime threads (default: the runtime's; with --out, the cores shared by the workers).")
@click.option("--out", type=PathArg, default=None,
              help="Score the folder IMAGES (recursively, any number of images) into this .csv, .jsonl or .parquet "
                   "file; run again with the same --out to continue a killed run. Unreadable images go to "
                   "OUT-stem.errors.tsv beside it.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_THREADS), default=None,
              help="With --out: worker processes, or Ray actors with --ray (default: the cores).")
@click.option("--batch-size", type=click.IntRange(min=1, max=4096), default=None,
              help="With --out: images per runtime call.  [default: 64]")
@click.option("--chunk-size", type=click.IntRange(min=1, max=1_000_000), default=None,
              help="With --out: images per chunk, the unit a continued run skips or redoes.  [default: 1024]")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="With --out: run on the Ray cluster at ADDRESS (a local one when no address is given); needs "
                   "edgecnn[ray].")
@click.pass_context
def predict(ctx, images, model_path, top_k, invert, as_json, plot, threads, out, workers, batch_size, chunk_size,
            ray_address) -> None:
    """Classify IMAGES (files, or folders of images) with an exported model. Exit 1 when any image failed.

    With --out, IMAGES is one folder, scored in bounded memory into a file (resumable)."""
    import json
    import warnings

    from PIL import Image

    from .errors import EXIT_FAILED
    from .predict import predict_paths

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # huge images get our own one-line error
    warnings.filterwarnings("ignore", module=r"PIL\.")  # e.g. "Corrupt EXIF data": the image's own line says enough
    invert = {"yes": True, "no": False}.get(invert, "auto")
    if out is not None:
        if score_folder_command(images, out, model_path=model_path, top_k=top_k, invert=invert, as_json=as_json,
                                plot=plot, threads=threads, workers=workers, batch_size=batch_size,
                                chunk_size=chunk_size, ray_address=ray_address):
            ctx.exit(EXIT_FAILED)
        return
    batch_only = {"--workers": workers, "--batch-size": batch_size, "--chunk-size": chunk_size, "--ray": ray_address}
    given = [name for name, value in batch_only.items() if value is not None]
    if given:
        raise EdgecnnError(f"{given[0]} needs --out FILE (it scores a folder into a file)")
    report = predict_paths(images, model=model_path, top_k=top_k, invert=invert, threads=threads, plot=plot)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for item in report.failed:
        click.echo(f"error: {item.error}", err=True)
    text = json.dumps(report.to_dict(), indent=2) if as_json else "\n".join(report.lines())
    if text:
        click.echo(text)
    if report.plot:
        click.echo(f"plot -> {report.plot}", err=as_json)
    if report.failed:
        ctx.exit(EXIT_FAILED)


def score_folder_command(images, out, *, model_path, top_k, invert, as_json, plot, threads, workers, batch_size,
                         chunk_size, ray_address) -> int:
    """predict --out: the folder scored into a file, with a progress bar in images/s; the unreadable images."""
    from .batch import DEFAULT_CHUNK, score_folder
    from .batch.scorer import DEFAULT_BATCH
    from .predict import default_model

    if len(images) != 1:
        raise EdgecnnError(f"--out scores one folder, got {len(images)} paths")
    for name, value in (("--json", as_json), ("--plot", plot)):
        if value:
            raise EdgecnnError(f"{name} cannot be used with --out (the rows go to {out})")
    bar = None
    started = 0.0

    def show(done: int, total: int) -> None:
        nonlocal bar, started
        if not total:  # every chunk was done by the run this one continues: only the output is left to write
            return
        if bar is None:  # the first call, as scoring starts
            bar = click.progressbar(length=total, label="predicting", file=sys.stderr, show_pos=True,
                                    item_show_func=lambda rate: rate)
            bar.__enter__()
            started = time.monotonic()
        rate = done / max(time.monotonic() - started, 1e-9)
        bar.update(done - bar.pos, f"{rate:,.0f} images/s")

    try:
        report = score_folder(images[0], out, model=model_path or default_model(), top_k=top_k,
                              workers=workers, threads=threads, batch=batch_size or DEFAULT_BATCH,
                              chunk=chunk_size or DEFAULT_CHUNK, invert=invert, ray=ray_address, on_progress=show)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for line in report.lines():
        click.echo(line)
    return report.failed


@cli.command()
@click.argument("targets", nargs=-1, type=PathArg)
@click.option("--batch-sizes", default=None, help="Comma-separated batch sizes.  [default: 1,32]")
@click.option("--threads", default=None, help="Comma-separated thread counts; N = all cores.  [default: 1,N]")
@click.option("--runs", default=None, help="Timed runs per case, after the warm-up.  [default: 1000]")
@click.option("--warmup", default=None, help="Untimed runs first.  [default: 100]")
@click.option("--max-seconds", default=None, help="Each case's time budget: its warm-up and timed runs stop after "
                                                  "this many seconds together (at least 30 timed runs, 10 with "
                                                  "--quick; each row records its runs).  [default: 3; --quick: 1]")
@click.option("--quick", is_flag=True, help="Short preset: batch 1,32, 1 thread, 200 runs, 20 warm-up, 1 s a case, "
              "no rows of the bare runtime calls.")
@click.option("--json", "json_path", type=PathArg, default=None, help="Also write the results to this JSON file.")
@click.option("--csv", "csv_path", type=PathArg, default=None, help="Write one CSV row per case.")
@click.option("--plot", "plot_path", type=PathArg, default=None, help="Write a latency/throughput chart (PNG).")
@click.option("--compare", is_flag=True, help="TARGETS are bench JSON files (several machines): merge them into "
                                              "one table and one chart (default bench-compare.png).")
@click.option("--browser", is_flag=True, help="Also time each ONNX export in headless Chromium (the `edgecnn web` "
                                              "page, onnxruntime-web wasm, batch 1).")
@data_option("--data-dir", help=DATA_HELP + " Its test images are the inputs.  [default: as recorded at export]")
def bench(targets, batch_sizes, threads, runs, warmup, max_seconds, quick, json_path, csv_path, plot_path,
          compare, browser, data) -> None:
    """Latency, throughput, memory and size of each export, next to Keras and the raw runtimes (TARGETS: bundle
    folders or model files; default: every export of models/fashion-cnn and its Keras model). Writes DIR/bench.json."""
    from . import bench as lib

    if compare:
        merged = lib.compare(targets, json_path=json_path, csv_path=csv_path, plot_path=plot_path or lib.COMPARE_PLOT)
        click.echo(merged.table())
        for path in merged.written:
            click.echo(f"-> {path}")
        return
    options = lib.parse_options(batch_sizes=batch_sizes, threads=threads, runs=runs, warmup=warmup,
                                max_seconds=max_seconds, quick=quick)
    report = lib.bench(targets or None, **options, json_path=json_path, csv_path=csv_path, plot_path=plot_path,
                       browser=browser, data=data)
    click.echo(report.table())
    click.echo(f"each case: {options['runs']} timed runs after {options['warmup']} warm-up, both within "
               f"{options['max_seconds']} s (at least {options['min_runs']} timed runs; bench.json records the runs "
               "of each row)" + ("" if options["raw_cases"] else "; no raw rows: each predictor row times the bare "
                                 "runtime call in alternation (predictor_overhead)"))
    if report.ratios:
        click.echo(lib.format_ratios(report.ratios))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for path in report.written:
        click.echo(f"-> {path}")


@cli.command()
@click.argument("bundle", type=PathArg, required=False)
@click.option("--out", type=PathArg, default=None, help="Folder for the web app (default: BUNDLE/web).")
@click.option("--model", type=click.Choice(["onnx", "onnx-int8"]), default="onnx", show_default=True,
              help="The ONNX export the page runs.")
@data_option("--data-dir", help=DATA_HELP + " Its test split gives the sample images.  [default: as recorded at export]")
@click.option("--serve", is_flag=True, help="Then serve the folder on 127.0.0.1 (browsers refuse wasm from file://).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True,
              help="Port for --serve (0: any free port).")
def web(bundle, out, model, data, serve, port) -> None:
    """Write a static web app that classifies images in the browser with BUNDLE's ONNX model (default:
    models/fashion-cnn), using onnxruntime-web; nothing is sent to a server."""
    from .fileio import format_bytes
    from .web import build_web_app, serve as serve_folder

    app = build_web_app(bundle, out, model=model, data=data)
    click.echo(f"web app -> {app.folder} ({app.model}, {app.samples} sample images, {format_bytes(app.bytes)})")
    if serve:
        serve_folder(app.folder, port, on_ready=lambda url: click.echo(f"serving {app.folder} at {url} (Ctrl-C stops)"))
    else:
        click.echo(f"open it through a web server: edgecnn web {bundle or ''} --out {app.folder} --serve".replace("  ", " "))


@cli.command()
@training_options("The bundle folder to bring up to date.")
@click.option("--force", is_flag=True, help="Redo every step, even those that are up to date.")
@click.pass_context
def pipeline(ctx, out, epochs, batch_size, patience, seed, data, limit, image_size, channels, force) -> None:
    """Train, export (all formats), verify, benchmark (quick) and report into OUT, skipping up-to-date steps.
    Exit 0 when every export passes verification, 1 when one fails."""
    from .errors import EXIT_FAILED
    from .pipeline import run_pipeline
    from .train import TrainConfig

    cfg = TrainConfig(out=out, epochs=epochs, batch_size=batch_size, patience=patience, seed=seed,
                      data=data, limit=limit, image_size=image_size, channels=int(channels) if channels else None)
    result = run_pipeline(out, cfg, force=force, log=click.echo, on_layer_progress=layer_progress())
    click.echo("")
    click.echo(result.table())
    click.echo(f"{'PASS' if result.passed else 'FAIL'}: pipeline finished in {result.seconds:.1f} s; "
               f"report -> {result.report}")
    if not result.passed:
        ctx.exit(EXIT_FAILED)
