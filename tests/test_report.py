"""The HTML report: every section from a bundle, self-contained, escaped, and degrading section by section."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.datasets import CLASS_NAMES
from edgecnn.errors import EdgecnnError
from edgecnn.model import REFERENCE_LAYERS, LayerRow, format_layer_table
from edgecnn.render.readme import END, START, update_readme
from edgecnn.render.report import write_report
from edgecnn.bundle.results import load_bundle
from edgecnn.render.rows import export_rows
from edgecnn.export import FORMATS as EXPORT_FORMATS
from edgecnn.fileio import format_bytes

from .conftest import make_idx_dataset
from .helpers import assert_one_line_error, invoke

EVIL = '<script>alert("x")</script>'
#: Every export format of the registry: (file, precision, runtime). The fake bundle's i-th format (from 1) has
#: i x 100 kB and a p50 of i x 0.2 ms at batch 1; int8 formats flip two images, onnx-int8 fails its gate.
FORMATS = {name: (fmt.file, fmt.precision, fmt.runtime) for name, fmt in EXPORT_FORMATS.items()}
N_INT8 = sum(precision == "int8" for _, precision, _ in FORMATS.values())
TFLITE_INT8 = list(FORMATS).index("tflite-int8") + 1  # its position: its size and latency in the fake bundle
PASSING = f"{len(FORMATS) - 1}/{len(FORMATS)} PASS"


def _png(path: Path, size=(120, 80), color=(30, 120, 200)) -> None:
    Image.new("RGB", size, color).save(path)


def _confusion(truth, predicted) -> list[list[int]]:
    counts = np.zeros((10, 10), int)
    np.add.at(counts, (truth, predicted), 1)
    return counts.tolist()


def make_fake_bundle(folder: Path, *, n_test: int = 60, class_names=CLASS_NAMES, failing: str | None = "onnx-int8") -> Path:
    """A bundle folder whose JSON files follow the helpers' schemas (HELPERS.md), with a small IDX test set."""
    folder.mkdir(parents=True, exist_ok=True)
    data = make_idx_dataset(folder / "data", n_train=20, n_test=n_test)
    rng = np.random.default_rng(1)
    from edgecnn.datasets.fashion_mnist import read_idx

    y_test = read_idx(data / "t10k-labels-idx1-ubyte.gz").astype(int)
    logits = rng.normal(size=(n_test, 10)) + 4 * np.eye(10)[y_test]
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    np.save(folder / "reference_probs.npy", probs)
    np.save(folder / "reference_labels.npy", y_test.astype(np.uint8))
    (folder / "model.keras").write_bytes(b"PK" + b"\0" * 1000)
    _png(folder / "architecture.png", (200, 400))
    _png(folder / "training.png", (600, 220), (250, 160, 40))
    rows = [LayerRow(f"layer_{i}", kind, shape, params) for i, (kind, shape, params) in enumerate(REFERENCE_LAYERS)]
    (folder / "summary.txt").write_text(format_layer_table(rows) + "\n")
    history = {"loss": [0.6, 0.4, 0.35], "accuracy": [0.8, 0.86, 0.88],
               "val_loss": [0.45, 0.38, 0.39], "val_accuracy": [0.84, 0.87, 0.86]}
    (folder / "history.json").write_text(json.dumps(history))
    metrics = {"test_accuracy": 0.9123, "test_loss": 0.25, "epochs_run": 3, "best_epoch": 2, "early_stopped": True,
               "epochs": 20, "patience": 1, "batch_size": 32, "seed": 42, "limit": None, "wall_time_s": 40.0,
               "seconds_per_epoch": 13.3, "params": 333526, "train_images": 16, "val_images": 4, "test_images": n_test,
               "data_source": str(data), "class_names": list(class_names),
               "machine": {"cpu": "Test CPU", "cores": 2, "packages": {"numpy": "2"}}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    reference = probs.argmax(1)
    exports, verified, results = {}, {}, []
    for i, (key, (file, precision, runtime)) in enumerate(FORMATS.items()):
        (folder / file).write_bytes(b"x" * (100_000 * (i + 1)))
        exports[key] = {"file": file, "format": key, "runtime": runtime, "precision": precision,
                        "bytes": 100_000 * (i + 1), "sha256": "0" * 64}
        predicted = reference.copy()
        flipped = [3, 7] if precision == "int8" else []
        predicted[flipped] = (predicted[flipped] + 1) % 10
        verified[key] = {
            "file": file, "precision": precision, "bytes": 100_000 * (i + 1), "images": n_test,
            "accuracy": 0.91, "accuracy_delta_points": -0.2 if precision == "int8" else 0.0,
            "agreement": 1 - len(flipped) / n_test, "flipped": len(flipped), "flipped_indices": flipped,
            "max_abs_diff": 0.03 if precision == "int8" else 1e-6, "mean_abs_diff": 1e-4,
            "confusion_matrix": _confusion(y_test, predicted),
            "disagreements": [{"index": j, "reference_label": int(reference[j]), "reference_prob": float(probs[j].max()),
                               "export_label": int(predicted[j]), "export_prob": 0.51} for j in flipped],
            "thresholds": {"atol": None, "min_agreement_pct": 99.0, "max_accuracy_drop_points": 1.0}, "passed": key != failing,
            "failures": ["agreement 96.67% < 99%"] if key == failing else [], "seconds": 0.1}
        for batch in (1, 32):
            results.append({"name": key, "file": file, "backend": runtime, "precision": precision, "mode": "predictor",
                            "batch_size": batch, "threads": 1, "latency_s": {"p50": 0.0002 * (i + 1) * batch,
                                                                              "p99": 0.0004 * (i + 1) * batch},
                            "images_per_s": batch / (0.0002 * (i + 1) * batch)})
    results.append({"name": "keras", "mode": "keras.call", "batch_size": 1, "threads": 1,
                    "latency_s": {"p50": 0.004, "p99": 0.006}, "images_per_s": 250.0})
    manifest = {"schema": 1, "model": {"file": "model.keras", "sha256": "0" * 64, "input_shape": [28, 28, 1],
                                       "classes": 10}, "class_names": list(class_names), "exports": exports}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "verify.json").write_text(json.dumps({
        "schema": 1, "created": "2026-01-01T00:00:00+00:00",
        "reference": {"kind": "keras", "accuracy": 0.9123, "confusion_matrix": _confusion(y_test, reference)},
        "exports": verified, "cross_runtime": [{"a": "tflite", "b": "onnx", "agreement": 1.0, "max_abs_diff": 2e-6}],
        "passed": failing is None}))
    (folder / "bench.json").write_text(json.dumps({"schema": 1, "machine": {"cpu": "Test CPU", "cores": 2},
                                                   "config": {"batch_sizes": [1, 32], "threads": [1], "runs": 200,
                                                              "warmup": 20}, "results": results}))
    return folder


def _images(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", page)


@pytest.fixture(scope="module")
def full_page(tmp_path_factory) -> tuple[Path, str]:
    folder = make_fake_bundle(tmp_path_factory.mktemp("bundle") / "fashion-cnn")
    path = write_report(folder)
    return folder, path.read_text("utf-8")


def test_report_has_every_section_and_the_headline(full_page):
    folder, page = full_page
    for anchor in ("model", "training", "exports", "errors", "samples"):
        assert f"<section id='{anchor}'>" in page
    assert "91.23%" in page  # headline test accuracy
    assert PASSING in page and "FAIL: onnx-int8" in page
    assert f"{list(FORMATS)[0]}: 0.200 ms" in page  # the fastest export's p50 at batch 1
    assert "333,526" in page and "313,700" in page  # layer table with parameter counts
    assert "early stopping after epoch 3" in page and "epoch 2 restored" in page
    for key in FORMATS:
        assert f"<td>{key}</td>" in page
    assert "agreement 96.67% &lt; 99%" in page  # the gate's failure reason is shown
    assert "class=\"fail\"" in page and "FAIL</td>" in page and "PASS</td>" in page
    assert page.count("<figure class='card'>") == 2 * N_INT8  # each int8 export x two disagreements
    assert "missing" not in re.sub(r"\.missing\{[^}]*\}", "", page)  # nothing degraded


def test_report_is_self_contained(full_page):
    _, page = full_page
    images = _images(page)
    assert len(images) >= 10  # architecture, training, latency, 3 confusion matrices, 4 thumbnails, samples
    for tag in images:
        data = re.search(r'src="data:image/png;base64,([^"]+)"', tag)
        assert data, tag[:80]
        assert base64.b64decode(data.group(1)).startswith(b"\x89PNG")
    assert not re.search(r"(src|href)\s*=\s*['\"](?!data:|#)", page)  # no external or relative resources
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()


def test_text_from_files_is_escaped(tmp_path):
    names = [f"{EVIL}{name} $x$ & <img src=x onerror=alert(1)>" for name in CLASS_NAMES]  # "$": mathtext
    folder = make_fake_bundle(tmp_path / "b", class_names=names)
    page = write_report(folder).read_text("utf-8")
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "$x$ &amp; &lt;img src=x" in page


def test_missing_files_degrade_section_by_section(tmp_path):
    folder = make_fake_bundle(tmp_path / "b")
    for name in ("verify.json", "bench.json", "architecture.png"):
        (folder / name).unlink()
    (folder / "history.json").write_text("{not json")
    page = write_report(folder).read_text("utf-8")
    for needle in ("verify.json not found", "`edgecnn verify`", "bench.json not found", "`edgecnn bench`",
                   "architecture.png not found", "history.json", "is not valid JSON", "not verified",
                   "not benchmarked"):
        assert needle in page, needle
    assert "313,700" in page  # the sections whose files are there still show
    assert 'alt="confusion matrix of the Keras model"' in page  # recomputed from reference_probs.npy
    assert page.count("<section id=") == 5


def test_a_folder_that_is_no_bundle_is_refused(tmp_path):
    with pytest.raises(EdgecnnError, match="is not a bundle"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_a_bundle_with_one_file_still_gives_a_page(tmp_path):
    (tmp_path / "summary.txt").write_text("layer table\n")
    page = write_report(tmp_path).read_text("utf-8")
    assert page.count("<section id=") == 5
    for needle in ("metrics.json not found", "manifest.json not found", "edgecnn train", "edgecnn export"):
        assert needle in page


def test_export_rows_merge_manifest_verify_and_bench(tmp_path):
    rows = {r.name: r for r in export_rows(load_bundle(make_fake_bundle(tmp_path / "b")))}
    assert list(rows)[0] == "keras" and rows["keras"].accuracy == pytest.approx(0.9123)
    assert rows["keras"].p50_ms == pytest.approx(4.0)
    int8 = rows["tflite-int8"]
    assert (int8.bytes, int8.precision, int8.passed) == (100_000 * TFLITE_INT8, "int8", True)
    assert int8.p50_ms == pytest.approx(0.2 * TFLITE_INT8) and int8.p99_ms == pytest.approx(0.4 * TFLITE_INT8)
    assert int8.throughput_batch == 32 and int8.images_per_s == pytest.approx(32 / (0.0002 * TFLITE_INT8 * 32))
    assert rows["onnx-int8"].passed is False and rows["onnx-int8"].failures


def test_cli_report(tmp_path):
    folder = make_fake_bundle(tmp_path / "b")
    proc = invoke("report", folder)
    assert proc.returncode == 0, proc.stderr
    assert str(folder / "report.html") in proc.stdout
    assert not list(folder.glob(".edgecnn-tmp-*"))
    assert_one_line_error(invoke("report", tmp_path / "nope"), "nope", "not found", code=2)


def test_readme_figures_come_from_the_bundle(tmp_path):
    folder = make_fake_bundle(tmp_path / "models" / "fashion-cnn")
    readme = tmp_path / "README.md"
    readme.write_text(f"# edgecnn\n\nintro\n\n{START}\nold figures typed by hand\n{END}\n\n## Usage\n")
    assert update_readme(readme, folder) is True
    text = readme.read_text()
    block = text[text.index(START):text.index(END)]
    assert "old figures" not in block and text.startswith("# edgecnn\n\nintro") and text.endswith("## Usage\n")
    assert "**91.23%**" in block and f"**{PASSING}**" in block and "333,526" in block
    size, p50 = format_bytes(100_000 * TFLITE_INT8), f"{0.2 * TFLITE_INT8:.3f} ms"
    assert f"| tflite-int8 | {size} | 0.9100 | -0.20 pt | 96.67% | {p50} | PASS |" in block
    assert "| onnx-int8 |" in block and "| FAIL |" in block
    assert "](models/fashion-cnn/training.png)" in block  # relative to the README
    assert update_readme(readme, folder) is False  # same results, same file


def test_browser_rows_reach_the_readme_and_the_report(tmp_path):
    import json

    from edgecnn.render.report import write_report

    folder = make_fake_bundle(tmp_path / "models" / "fashion-cnn")
    bench = json.loads((folder / "bench.json").read_text())
    native = next(r for r in bench["results"] if r["name"] == "onnx")
    bench["results"] += [{**native, "mode": "browser/wasm", "batch_size": 1, "threads": 1, "web_app_bytes": 15_600_000,
                          "latency_s": {**native["latency_s"], "p50": 0.00125}}]
    (folder / "bench.json").write_text(json.dumps(bench))
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    update_readme(readme, folder)
    line = "batch 1: onnx p50 1.250 ms; the self-contained web app (`edgecnn web`) is 15.60 MB."
    assert line in readme.read_text()
    assert line.replace("`", "") in write_report(folder).read_text().replace("`", "").replace("&#x60;", "")


def test_readme_figures_refuse_a_missing_block_or_result(tmp_path):
    folder = make_fake_bundle(tmp_path / "b")
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    assert_one_line_error(invoke("report", folder, "--readme", readme), "figures:start", code=2)
    readme.write_text(f"{START}\n{END}\n")
    (folder / "bench.json").unlink()
    assert_one_line_error(invoke("report", folder, "--readme", readme), "bench.json not found", "edgecnn bench",
                          code=2)
    assert readme.read_text() == f"{START}\n{END}\n"


def test_mixed_precision_exports_show_their_layer_choice(tmp_path):
    folder = make_fake_bundle(tmp_path / "b")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["exports"]["tflite-int8"]["layers"] = [
        {"name": "conv2d", "op": "CONV_2D", "precision": "float32", "reason": "latency", "sqnr_db": 39.6,
         "harm_points": -0.15, "float32_s": 11e-6, "int8_s": 33e-6, "weight_bytes_float32": 1280,
         "weight_bytes_int8": 416},
        {"name": "dense", "op": "FULLY_CONNECTED", "precision": "int8", "reason": "budget", "sqnr_db": 43.6,
         "harm_points": 0.05}]
    manifest["exports"]["tflite-int8"]["mixed_precision"] = {
        "max_accuracy_drop_points": 0.5, "validation_images": 2000, "validation_source": "2000 held-out images",
        "float_accuracy": 0.93, "all_int8_accuracy": 0.9265, "accuracy": 0.926, "met": True}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(folder).read_text("utf-8")
    assert "tflite-int8: precision per layer" in page and "latency" in page and "2000 held-out images" in page
    assert ">11 µs</td><td class=\"num\">33 µs</td><td>1 kB / 416 B</td>" in page  # measured at export
    assert "precision per layer" not in write_report(make_fake_bundle(tmp_path / "plain")).read_text("utf-8")
