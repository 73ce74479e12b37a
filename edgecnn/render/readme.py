"""The README's figures, regenerated from a bundle's result files instead of typed by hand.

README.md holds a block between ``<!-- figures:start -->`` and ``<!-- figures:end -->``;
:func:`update_readme` rewrites only that block from metrics.json, manifest.json,
verify.json and bench.json, so the numbers people read are the ones measured.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..bundle.files import BENCH_FILE, MANIFEST_FILE, METRICS_FILE, TRAINING_FILE, VERIFY_FILE, default_bundle
from ..bundle.results import load_bundle
from ..errors import EdgecnnError
from ..fileio import write_text
from .rows import (ARM_CAPTION, ARM_HEADERS, all_passed, arm_table, browser_line, export_rows, fmt, listed,
                   short_table)

START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def figures_markdown(folder: str | os.PathLike | None = None, *, relative_to: str | os.PathLike = ".") -> str:
    """The block's Markdown: headline figures, the per-export table and the training curves."""
    folder = Path(folder) if folder is not None else default_bundle()
    bundle = load_bundle(folder)
    for name, value in ((METRICS_FILE, bundle.metrics), (MANIFEST_FILE, bundle.manifest),
                        (VERIFY_FILE, bundle.verify), (BENCH_FILE, bundle.bench)):
        if value is None:
            raise EdgecnnError(f"README figures need every result file: {bundle.missing(name)}")
    m, rows = bundle.metrics, export_rows(bundle)
    exports = [r for r in rows if r.name != "keras"]
    passed = sum(bool(r.passed) for r in exports)
    machine, config = bundle.bench.machine, bundle.bench.config
    head, body = short_table(rows)
    shown = Path(os.path.relpath(folder.resolve(), Path(relative_to).resolve())).as_posix()
    lines = [
        f"<!-- made by `edgecnn report {shown} --readme README.md` from its {METRICS_FILE}, {VERIFY_FILE} and "
        f"{BENCH_FILE}; do not edit by hand -->",
        f"Test accuracy **{fmt(m.get('test_accuracy'), '.2%')}** on {m.get('test_images')} test images; "
        f"{m.get('params', 0):,} parameters; trained {m.get('epochs_run')} epochs (best {m.get('best_epoch')}, "
        f"early stopping: {'yes' if m.get('early_stopped') else 'no'}) in {fmt(m.get('wall_time_s'), '.0f')} s. "
        f"Exports verified on the whole test set: **{passed}/{len(exports)} PASS**"
        f"{'' if all_passed(rows) else ' (see the report)'}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + [":---:"]) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
        "",
        f"Latency: one call at batch 1, threads {listed(config.get('threads'))}, p50 of {config.get('runs', '?')} runs "
        f"on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores).",
    ]
    browser = browser_line(bundle)
    if browser:
        lines += ["", browser]
    arm = arm_table(bundle)
    if arm:
        lines += ["", ARM_CAPTION, "", "| " + " | ".join(ARM_HEADERS) + " |",
                  "|" + "|".join(["---"] * 3 + ["---:"] * (len(ARM_HEADERS) - 4) + [":---:"]) + "|",
                  *("| " + " | ".join(row) + " |" for row in arm)]
    if (folder / TRAINING_FILE).is_file():
        picture = Path(os.path.relpath((folder / TRAINING_FILE).resolve(), relative_to)).as_posix()
        lines += ["", f"![loss and accuracy per epoch, train and validation]({picture})"]
    return "\n".join(lines)


def update_readme(readme: str | os.PathLike, folder: str | os.PathLike | None = None) -> bool:
    """Rewrite the figures block of ``readme`` from ``folder``'s results; True when the file changed."""
    return replace_block(readme, START, END, lambda: figures_markdown(folder, relative_to=Path(readme).resolve().parent),
                         "the figures")


def block_text(text: str, start: str, end: str) -> str | None:
    """What a README holds between its ``start`` and ``end`` markers (None: not exactly one such block)."""
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        return None
    return text.split(start)[1].split(end)[0].strip("\n")


def replace_block(readme: str | os.PathLike, start: str, end: str, block: Callable[[], str], what: str) -> bool:
    """Rewrite the text between ``start`` and ``end`` in ``readme`` with ``block()``; True when the file changed.

    The only writer of README blocks: a README without exactly one block is an error, never appended to."""
    readme = Path(readme)
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise EdgecnnError(f"cannot read {readme}: {exc.strerror or exc}") from exc
    if block_text(text, start, end) is None:
        raise EdgecnnError(f"{readme} needs exactly one {start} ... {end} block for {what}")
    before, rest = text.split(start)
    updated = f"{before}{start}\n{block()}\n{end}{rest.split(end)[1]}"
    if updated == text:
        return False
    write_text(readme, updated)
    return True
