"""``edgecnn report``: one self-contained HTML page that shows a bundle at a glance.

The page is built only from the bundle's files (metrics, history, manifest,
verify and bench results, reference probabilities, plots) and the test set, so
it needs no model runtime. Every section degrades on its own: a missing or
unreadable file turns into a line saying which command makes it. Images are
embedded as base64 PNG data URIs and all text is escaped: the page works
offline, in a mail attachment, and cannot be scripted by a crafted class name.
"""
from __future__ import annotations

import base64
import html
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bundle.files import (ARCHITECTURE_FILE, BENCH_FILE, HISTORY_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE,
                            REFERENCE_PROBS_FILE, REPORT_FILE, SUMMARY_FILE, TRAINING_FILE, VERIFY_FILE, default_bundle)
from ..bundle.results import MADE_BY, READERS, TEST_SET, Bundle, load_bundle
from ..bench.output import seconds
from ..bundle.schema import VerifiedExport
from ..datasets.bundled import TestSet, test_set_of
from ..datasets.fashion_mnist import CLASS_NAMES
from ..errors import EdgecnnError
from ..fileio import format_bytes, read_npy, write_text
from ..metrics import confusion_matrix, top1
from . import charts
from .rows import (ARM_CAPTION, ARM_HEADERS, ExportRow, all_passed, arm_table, browser_line, export_rows, fmt, listed,
                   mixed_scores, verdict)

#: Files whose change makes the report stale (the pipeline compares their times with report.html's).
REPORT_INPUTS = (METRICS_FILE, HISTORY_FILE, SUMMARY_FILE, TRAINING_FILE, ARCHITECTURE_FILE, MANIFEST_FILE,
                 REFERENCE_PROBS_FILE, VERIFY_FILE, BENCH_FILE)
GALLERY_PER_EXPORT, GALLERY_MAX = 8, 48


# ----------------------------------------------------------------------------- HTML pieces

def e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def img(png: bytes, alt: str, css: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    css_attr = f' class="{e(css)}"' if css else ""
    return f'<img src="data:image/png;base64,{data}" alt="{e(alt)}"{css_attr}>'


def note(text: str) -> str:
    return f'<p class="missing">{e(text)}</p>'


def table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """An HTML table; cells are escaped here."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = []
    for i, cells in enumerate(rows):
        css = f' class="{e(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td{_align(c)}>{e(c)}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


NUMBER = re.compile(r"^([-+]?[\d.,]+(e[-+]?\d+)?(%| \w+(/s)?)?|—|\(.*\))$")


def _align(cell: str) -> str:
    """Numbers (with a unit), dashes and shapes align right, words left."""
    return ' class="num"' if NUMBER.match(str(cell)) else ""


def png_file(bundle: Bundle, name: str, alt: str, css: str = "") -> str:
    path = bundle.folder / name
    try:
        data = path.read_bytes()
    except OSError:
        return note(bundle.missing(name))
    if not data.startswith(b"\x89PNG"):
        return note(f"{path} is not a PNG image; run `{MADE_BY[name]}` to remake it")
    return img(data, alt, css)


# ----------------------------------------------------------------------------- sections

SUMMARY_ROW = re.compile(r"^(\S+)\s+(\S+)\s+(\(.*?\))\s+([\d,]+)\s*$")


def class_names(bundle: Bundle) -> list[str]:
    """The bundle's class names; the default model's for a bundle made before names were recorded."""
    return bundle.class_names if bundle.class_names is not None else list(CLASS_NAMES)


def layer_rows(summary: str) -> list[list[str]]:
    """The rows of summary.txt (edgecnn's layer table): name, type, output shape, params."""
    return [list(m.groups()) for m in map(SUMMARY_ROW.match, summary.splitlines()) if m]


def model_facts(bundle: Bundle) -> str:
    """The classes, the preprocessing and the data: what the model is, beside how it is built."""
    names = class_names(bundle)
    lines = [f"<b>{len(names)} classes</b>: {e(', '.join(names))}"]
    manifest = bundle.manifest
    pre = manifest.preprocessing if manifest else None
    if pre:
        lines.append(f"<b>Input</b>: {e(pre.get('height'))}x{e(pre.get('width'))}x{e(pre.get('channels'))}, "
                     f"pixels as {e(pre.get('input_range', '0-1'))}, resize {e(pre.get('resize', 'fit'))}, "
                     f"{e(pre.get('output', 'probabilities'))} out"
                     + (f", auto-invert to a {e(pre['background'])} background" if pre.get("background") else ""))
    if manifest and manifest.data:
        counts = ", ".join(f"{k} {v:,}" for k, v in (manifest.data.counts or {}).items())
        lines.append(f"<b>Data</b>: {e(manifest.data.source)}" + (f" ({e(counts)} images)" if counts else ""))
    return "<p class='small'>" + "<br>".join(lines) + "</p>"


def section_model(bundle: Bundle, _data: TestSet | None) -> str:
    parts = [model_facts(bundle), '<div class="split"><div>', png_file(bundle, ARCHITECTURE_FILE, "architecture diagram", "arch"),
             "</div><div>"]
    rows = layer_rows(bundle.summary) if bundle.summary else []
    if rows:
        total = sum(int(r[3].replace(",", "")) for r in rows)
        parts.append(table(["layer", "type", "output shape", "params"], rows + [["total", "", "", f"{total:,}"]],
                           [""] * len(rows) + ["total"]))
    elif bundle.summary:
        parts.append(f"<pre>{e(bundle.summary)}</pre>")
    else:
        parts.append(note(bundle.missing(SUMMARY_FILE)))
    return "".join(parts) + "</div></div>"


def section_training(bundle: Bundle, _data: TestSet | None) -> str:
    m = bundle.metrics
    parts = []
    if m:
        stopped = (f"early stopping after epoch {m.get('epochs_run')} (patience {m.get('patience')}); best weights "
                   f"from epoch {m.get('best_epoch')} restored" if m.get("early_stopped")
                   else f"ran all {m.get('epochs_run')} epochs; best epoch {m.get('best_epoch')}")
        facts = [("test accuracy", fmt(m.get("test_accuracy"), ".4f")), ("test loss", fmt(m.get("test_loss"), ".4f")),
                 ("epochs run", f"{m.get('epochs_run')} of {m.get('epochs')}"), ("stopping", stopped),
                 ("training time", f"{fmt(m.get('wall_time_s'), '.0f', ' s')} ({fmt(m.get('seconds_per_epoch'), '.1f')} s/epoch)"),
                 ("images", f"{m.get('train_images')} train / {m.get('val_images')} validation / {m.get('test_images')} test"),
                 ("options", f"batch size {m.get('batch_size')}, seed {m.get('seed')}, limit {m.get('limit')}")]
        parts.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>")
    else:
        parts.append(note(bundle.missing(METRICS_FILE)))
    parts.append(png_file(bundle, TRAINING_FILE, "loss and accuracy per epoch, train and validation"))
    h = bundle.history
    if h and h.get("loss"):
        best = (m or {}).get("best_epoch")
        keys = [k for k in ("loss", "val_loss", "accuracy", "val_accuracy") if k in h]
        rows = [[str(i + 1)] + [fmt(h[k][i], ".4f") if i < len(h[k]) else "—" for k in keys] for i in range(len(h["loss"]))]
        parts.append("<details><summary>per-epoch values</summary>" + table(
            ["epoch"] + keys, rows, ["best" if i + 1 == best else "" for i in range(len(rows))]) + "</details>")
    elif not h:
        parts.append(note(bundle.missing(HISTORY_FILE)))
    return "".join(parts)


def section_exports(bundle: Bundle, _data: TestSet | None) -> str:
    parts = []
    for name in (MANIFEST_FILE, VERIFY_FILE, BENCH_FILE):
        if getattr(bundle, READERS[name][0]) is None:
            parts.append(note(bundle.missing(name)))
    rows = export_rows(bundle)
    batch = max((r.throughput_batch for r in rows if r.throughput_batch), default=None)
    headers = ["model", "file", "size", "precision", "accuracy", "Δ vs Keras", "agreement", "max |diff|",
               "p50 (batch 1)", "p99 (batch 1)", f"throughput (batch {batch or '?'})", "verdict"]
    cells = [[r.name, r.file or "—", format_bytes(r.bytes), r.precision or "—", fmt(r.accuracy, ".4f"),
              fmt(r.delta_points, "+.2f", " pt"), fmt(r.agreement, ".2%"), fmt(r.max_abs_diff, ".2e"),
              fmt(r.p50_ms, ".3f", " ms"), fmt(r.p99_ms, ".3f", " ms"), _throughput(r, batch),
              verdict(r)] for r in rows]
    parts.append(table(headers, cells, ["" if r.passed is None else ("pass" if r.passed else "fail") for r in rows]))
    failures = [f"{r.name}: {f}" for r in rows for f in r.failures]
    if failures:
        parts.append("<ul class='failures'>" + "".join(f"<li>{e(f)}</li>" for f in failures) + "</ul>")
    parts.append(_gates(bundle))
    parts.append(_layer_precisions(bundle))
    timed = [r for r in rows if r.p50_ms is not None]
    if timed:
        parts.append(img(charts.latency_png([r.name for r in timed], [r.p50_ms for r in timed],
                                             [r.p99_ms if r.p99_ms is not None else r.p50_ms for r in timed],
                                             [r.images_per_s for r in timed],
                                             f"images per second, batch {batch or '?'}"),
                         "latency per call at batch 1 and throughput, per model"))
        machine = bundle.bench.machine if bundle.bench else {}
        config = bundle.bench.config if bundle.bench else {}
        parts.append(f"<p class='small'>Measured on {e(machine.get('cpu', '?'))} ({e(machine.get('cores', '?'))} cores), "
                     f"{e(config.get('runs', '?'))} runs after {e(config.get('warmup', '?'))} warm-up, "
                     f"threads {e(listed(config.get('threads')))}.</p>")
        browser = browser_line(bundle)
        if browser:
            parts.append(f"<p class='small'>{e(browser)}</p>")
    parts.append(_compatibility(bundle))
    cross = bundle.verify.cross_runtime if bundle.verify else []
    if cross:
        parts.append("<h3>Same precision, different runtimes</h3>" + table(
            ["a", "b", "agreement", "max |diff|"],
            [[c.a, c.b, fmt(c.agreement, ".2%"), fmt(c.max_abs_diff, ".2e")] for c in cross]))
    arm = arm_table(bundle)
    if arm:
        parts.append("<h3>On ARM</h3>" + note(ARM_CAPTION.replace("*", "").replace("`", "")) + table(
            ARM_HEADERS, arm, ["pass" if row[-1] == "PASS" else "fail" for row in arm]))
    return "".join(parts)


def _compatibility(bundle: Bundle) -> str:
    """Per export, what a phone, GPU delegate or NPU runtime needs of it (verify's mobile checks)."""
    verified = bundle.verify.exports if bundle.verify else {}
    rows = [[name if i == 0 else "", line] for name, result in verified.items() if result.compatibility
            for i, line in enumerate(result.compatibility.get("summary", []))]
    if not rows:
        return ""
    return "<h3>Mobile compatibility</h3>" + table(["model", "checks (from the file, before any device)"], rows)


def _layer_precisions(bundle: Bundle) -> str:
    """Per export chosen by mixed precision: each layer's precision, the reason, its measured error and latency."""
    parts = []
    for name, record in (bundle.manifest.exports.items() if bundle.manifest else ()):
        if not record.layers or record.mixed_precision is None:
            continue
        mixed = record.mixed_precision
        parts.append(f"<h3>{e(name)}: precision per layer</h3>" + table(
            ["layer", "op", "precision", "reason", "SQNR (dB)", "accuracy recovered in float",
             "float32 latency", "int8 latency", "weights float32 / int8"],
            [[layer.name, layer.op, layer.precision, layer.reason, fmt(layer.sqnr_db, ".1f"),
              fmt(layer.harm_points, "+.2f", " pt"), seconds(layer.float32_s), seconds(layer.int8_s),
              f"{format_bytes(layer.weight_bytes_float32)} / {format_bytes(layer.weight_bytes_int8)}"]
             for layer in record.layers]))
        parts.append(f"<p class='small'>Chosen on {e(mixed.validation_source)}: {e(mixed_scores(asdict(mixed)))}; "
                     f"{'met' if mixed.met else 'NOT met'}. Reasons: error = kept float for accuracy, latency = its "
                     "int8 kernel is slower, delegate = its int8 ops run outside XNNPACK and the whole model is "
                     "faster with it float, budget = int8 within the budget. Latency: the layer alone, batch 1, "
                     "1 thread, p50, on the machine that exported. <code>edgecnn explain</code> measures it again "
                     "here.</p>")
    return "".join(parts)


def _throughput(row: ExportRow, batch: int | None) -> str:
    """Images per second, with the batch size when it differs from the column's."""
    text = fmt(row.images_per_s, ",.0f", " img/s")
    return text if row.throughput_batch in (None, batch) else f"{text} (batch {row.throughput_batch})"


GATE_WORDS = {"atol": "max |diff| ≤ {:g}", "min_agreement_pct": "agreement ≥ {:g}%",
              "max_accuracy_drop_points": "accuracy drop ≤ {:g} pt"}


def _gates(bundle: Bundle) -> str:
    """The gate of each precision, in words (thresholds that are not set are left out)."""
    verified = bundle.verify.exports if bundle.verify else {}
    gates: dict[str, str] = {}
    for result in verified.values():
        limits = result.thresholds or {}
        words = [GATE_WORDS.get(k, k + " {}").format(v) for k, v in limits.items() if v is not None]
        gates.setdefault(str(result.precision), ", ".join(words) or "none")
    if not gates:
        return ""
    images = next((v.images for v in verified.values() if v.images), "?")
    text = "; ".join(f"{precision}: {words}" for precision, words in gates.items())
    return f"<p class='small'>Gates, checked on {e(images)} test images: {e(text)}.</p>"


def _test_set(bundle: Bundle, data: TestSet | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """Test images, labels and Keras probabilities, or why they are not available."""
    if data is None:
        return bundle.missing(TEST_SET)
    path = bundle.folder / REFERENCE_PROBS_FILE
    if not path.exists():
        return bundle.missing(REFERENCE_PROBS_FILE)
    try:
        probs = read_npy(path)
    except EdgecnnError as exc:
        return f"{exc}; run `edgecnn export` to remake it"
    if probs.ndim != 2 or len(probs) != len(data.x):
        return (f"{path} holds probabilities of shape {probs.shape}, but the test set in {data.source} has "
                f"{len(data.x)} images; run `edgecnn export` with the same data")
    return data.x, data.y, probs


def section_errors(bundle: Bundle, data: TestSet | None) -> str:
    names = class_names(bundle)
    parts, pictures = [], []
    matrix = bundle.verify.reference.confusion_matrix if bundle.verify else None
    if matrix is None:
        test = _test_set(bundle, data)
        if isinstance(test, str):
            parts.append(note(f"Keras confusion matrix: {bundle.missing(VERIFY_FILE)}"))
        else:
            matrix = confusion_matrix(test[1], top1(test[2]), test[2].shape[1])
    if matrix is not None:
        pictures.append(img(charts.confusion_png(matrix, names, "Keras"), "confusion matrix of the Keras model"))
    verified = bundle.verify.exports if bundle.verify else {}
    int8 = {k: v for k, v in verified.items() if v.precision == "int8" and v.confusion_matrix}
    for key, result in int8.items():
        pictures.append(img(charts.confusion_png(result.confusion_matrix, names, key),
                          f"confusion matrix of the {key} model"))
    if bundle.verify is not None and not int8:
        parts.append(note(f"no int8 export in {bundle.folder / VERIFY_FILE}; run `edgecnn export` and `edgecnn verify`"))
    parts.insert(0, f"<div class='grid2'>{''.join(pictures)}</div>")
    parts.append("<h3>Where an export disagrees with Keras</h3>")
    parts.append(_gallery(bundle, data, verified, names))
    return "".join(parts)


def _label(names: list[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else str(k)


def _gallery(bundle: Bundle, data: TestSet | None, verified: dict[str, VerifiedExport], names: list[str]) -> str:
    if bundle.verify is None:
        return note(bundle.missing(VERIFY_FILE))
    if data is None:
        return note(bundle.missing(TEST_SET))
    cards, counts = [], []
    for key, result in verified.items():
        shown = [d for d in result.disagreements if 0 <= d.index < len(data.x)][:GALLERY_PER_EXPORT]
        counts.append(f"{key}: {result.flipped if result.flipped is not None else len(result.disagreements)}")
        for d in shown[:max(0, GALLERY_MAX - len(cards))]:
            i = d.index
            cards.append(
                "<figure class='card'>" + img(charts.thumbnail_png(data.x[i]), f"test image {i}") +
                f"<figcaption><b>{e(key)}</b> #{i} (true {e(_label(names, int(data.y[i])))})<br>"
                f"Keras: {e(_label(names, d.reference_label))} {e(fmt(d.reference_prob, '.0%'))}<br>"
                f"export: {e(_label(names, d.export_label))} {e(fmt(d.export_prob, '.0%'))}"
                "</figcaption></figure>")
    summary = f"<p class='small'>Images whose top class differs from Keras's, per export: {e('; '.join(counts))}.</p>"
    if not cards:
        images = next((v.images for v in verified.values() if v.images), "the")
        return summary + f"<p>No export disagrees with Keras on any of {e(images)} test images.</p>"
    return summary + f"<div class='gallery'>{''.join(cards)}</div>"


def section_samples(bundle: Bundle, data: TestSet | None) -> str:
    test = _test_set(bundle, data)
    if isinstance(test, str):
        return note(test)
    x, y, probs = test
    picks = [int(np.flatnonzero(y == k)[0]) for k in range(probs.shape[1]) if (y == k).any()]
    chart = charts.samples_png(x[picks], probs[picks], y[picks], class_names(bundle))
    return ("<p>The first test image of each class with the Keras model's probabilities for the "
            f"{probs.shape[1]} classes (the predicted class in green when right, red when wrong).</p>"
            + img(chart, "test images with their predicted class probabilities"))


SECTIONS: tuple[tuple[str, str, Callable[[Bundle, TestSet | None], str]], ...] = (
    ("model", "Model", section_model),
    ("training", "Training", section_training),
    ("exports", "Exports", section_exports),
    ("errors", "Errors", section_errors),
    ("samples", "Samples", section_samples),
)


def headline(bundle: Bundle) -> str:
    """Test accuracy, how many exports pass, and the fastest export: the three facts people look for first."""
    rows = export_rows(bundle)
    accuracy = (bundle.metrics or {}).get("test_accuracy", rows[0].accuracy)
    exports = [r for r in rows if r.name != "keras"]
    judged = [r for r in exports if r.passed is not None]
    failed = [r.name for r in judged if not r.passed]
    status, css = {None: ("not verified", "unknown"), True: (f"{len(judged)}/{len(judged)} PASS", "pass"),
                   False: (f"{len(judged) - len(failed)}/{len(judged)} PASS — FAIL: {', '.join(failed)}", "fail")
                   }[all_passed(rows)]
    timed = [r for r in exports if r.p50_ms is not None]
    fastest = min(timed, key=lambda r: r.p50_ms) if timed else None
    cards = [("test accuracy", fmt(accuracy, ".2%") if accuracy is not None else "—", ""),
             ("exports verified", status, css),
             ("fastest export, p50 batch 1", f"{fastest.name}: {fastest.p50_ms:.3f} ms" if fastest else "not benchmarked", "")]
    params = (bundle.metrics or {}).get("params")
    if params:
        cards.append(("parameters", f"{params:,}", ""))
    return "<div class='headline'>" + "".join(
        f"<div class='stat {css}'><span>{e(k)}</span><strong>{e(v)}</strong></div>" for k, v, css in cards) + "</div>"


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:26px} h2{border-bottom:2px solid #d9e2ec;padding-bottom:4px;margin-top:36px}
section{background:#fff;border-radius:8px;padding:4px 20px 20px;margin:18px 0;box-shadow:0 1px 3px #0001}
nav a{margin-right:14px;color:#1565c0;text-decoration:none}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.stat{background:#fff;border-radius:8px;padding:10px 16px;min-width:180px;box-shadow:0 1px 3px #0002;border-left:6px solid #90a4ae}
.stat span{display:block;font-size:12px;text-transform:uppercase;color:#52606d}.stat strong{font-size:21px}
.stat.pass{border-left-color:#2e7d32}.stat.fail{border-left-color:#c62828}.stat.fail strong{color:#c62828}
table{border-collapse:collapse;font-size:13px;margin:10px 0}
th,td{padding:4px 7px;border-bottom:1px solid #e4e7eb;text-align:left;white-space:nowrap}
td.num{text-align:right} th{background:#f0f4f8;white-space:normal;vertical-align:bottom}
tr.pass td:last-child{color:#2e7d32;font-weight:600} tr.fail td{background:#ffebee} tr.fail td:last-child{color:#c62828;font-weight:700}
tr.best td,tr.total td{font-weight:600;background:#f0f4f8}
.split{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start} img{max-width:100%;height:auto}
img.arch{max-height:520px} .grid2{display:flex;flex-wrap:wrap;gap:12px}
.grid2 img{max-width:540px} .gallery{display:flex;flex-wrap:wrap;gap:10px}
.card{margin:0;background:#f8fafc;border:1px solid #e4e7eb;border-radius:6px;padding:6px;width:150px;font-size:12px}
.card img{image-rendering:pixelated;width:84px;display:block;margin:0 auto 4px}
.missing{color:#8d6e00;background:#fff8e1;border-left:4px solid #ffb300;padding:6px 10px}
.small{font-size:12px;color:#52606d} dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{color:#52606d} dd{margin:0} ul.failures{color:#c62828} footer{font-size:12px;color:#52606d;margin-top:24px}
"""


def render(bundle: Bundle, data: TestSet | None) -> str:
    """The whole page as a string."""
    sections = []
    for anchor, title, build in SECTIONS:
        try:
            body = build(bundle, data)
        except EdgecnnError as exc:  # anything else is a bug in the page, not in the files: it propagates
            body = note(f"this section could not be drawn from the files in {bundle.folder}: {exc}; "
                        "rerun `edgecnn pipeline --force` to remake them")
        sections.append(f"<section id='{anchor}'><h2>{e(title)}</h2>{body}</section>")
    nav = "".join(f"<a href='#{a}'>{e(t)}</a>" for a, t, _ in SECTIONS)
    machine = (bundle.metrics or {}).get("machine") or (bundle.bench.machine if bundle.bench else {})
    versions = ", ".join(f"{k} {v}" for k, v in (machine.get("packages") or {}).items() if v)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
        f"<title>edgecnn report: {e(bundle.folder.name)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>edgecnn report: {e(bundle.folder.name)}</h1>"
        f"<p class='small'>{e(bundle.folder)} · made {e(time.strftime('%Y-%m-%d %H:%M'))}</p>"
        f"{headline(bundle)}<nav>{nav}</nav>{''.join(sections)}"
        f"<footer>Machine: {e(machine.get('cpu', '?'))}, {e(machine.get('cores', '?'))} cores, "
        f"{e(machine.get('system', '?'))}, Python {e(machine.get('python', '?'))}. {e(versions)}</footer>"
        "</main></body></html>\n"
    )


def _dataset(bundle: Bundle, data: str | os.PathLike | None) -> TestSet | None:
    """The test set the bundle was exported with (see :func:`bundle_test_set`); None, with the reason, if absent.

    Bundles exported before the manifest recorded data fall back on the folder training read (metrics.json).
    """
    source = (bundle.metrics or {}).get("data_source")
    if data is None and (bundle.manifest is None or bundle.manifest.data is None) and source and Path(source).is_dir():
        data = source
    try:
        return test_set_of(bundle.folder, bundle.manifest, data)
    except EdgecnnError as exc:
        bundle.problems[TEST_SET] = f"test set not loaded ({exc})"
        return None


def write_report(folder: str | os.PathLike | None = None, *, data: str | os.PathLike | None = None) -> Path:
    """Write ``folder/report.html`` (default: the reference bundle) and return its path."""
    folder = Path(folder) if folder is not None else default_bundle()
    if not folder.is_dir():
        raise EdgecnnError(f"bundle folder {folder} not found" if not folder.exists() else f"{folder} is not a folder")
    bundle = load_bundle(folder)
    if not any((folder / name).exists() for name in (*READERS, MODEL_FILE)):
        raise EdgecnnError(f"{folder} is not a bundle: it holds none of {', '.join((MODEL_FILE, *READERS))}; "
                           "run `edgecnn pipeline --out` there first")
    page = render(bundle, _dataset(bundle, data))
    return write_text(folder / REPORT_FILE, page)
