"""The bad-input battery: every command, every input, one table.

Each case runs ``edgecnn ...`` on a broken input and asserts the exit code,
exactly one ``error:`` line that names the problem and the file, no traceback
and no Python warning; the ``ok`` cases assert that unusual-but-valid input
(spaces and non-ASCII in paths) works. Cases run in-process (click's CliRunner:
the same exit code, stdout and stderr, in milliseconds instead of a Python and
TensorFlow start each); a case with an environment (TensorFlow hidden, as on a
device) runs in its own process. The bundle they corrupt is the session's tiny
bundle (a tiny model trained on synthetic IDX data, all exports).
"""
from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from .conftest import write_idx
from .helpers import TENSORFLOW, assert_one_line_error, hide_modules, invoke, run_cli

TI, TL = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
XI, XL = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"

# ------------------------------------------------------------ shared bundle

def lambda_model(folder: Path) -> Path:
    """A .keras file with a Lambda layer: arbitrary Python that safe mode must refuse."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    model = keras.Sequential([keras.Input((28, 28, 1), name="input"), keras.layers.Lambda(lambda x: x * 1.0),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    path = folder / "lambda.keras"
    folder.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


# ------------------------------------------------------------ case context


class Ctx(dict):
    """Template values for one case, each made on first use in the case's own folder."""

    def __init__(self, tmp: Path, bundle: Path, data: Path) -> None:
        super().__init__(tmp=str(tmp), B=str(bundle), I=str(data))
        self.root, self.bundle, self.data = tmp, bundle, data

    def __missing__(self, key: str) -> str:
        make = {
            "b": lambda: shutil.copytree(self.bundle, self.root / "b"),
            "idx": lambda: shutil.copytree(self.data, self.root / "idx"),
            "png": lambda: _png(self.root / "ok.png"),
            "file": lambda: _text(self.root / "file.txt", "just text\n"),
            "empty_dir": lambda: _mkdir(self.root / "empty"),
            "no_tf": lambda: hide_modules(self.root / "no-tf", TENSORFLOW),
        }[key]
        self[key] = str(make())
        return self[key]

    def path(self, template: str) -> Path:
        return Path(template.format_map(self))


def _png(path: Path) -> Path:
    from PIL import Image

    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 9:19] = 200  # a light garment-ish block on black
    Image.fromarray(pixels, "L").save(path)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# Setup steps: each takes the context and changes files in the case's folder.

def write(template: str, data: bytes | Callable[[Ctx], bytes]) -> Callable[[Ctx], None]:
    def step(c: Ctx) -> None:
        path = c.path(template)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data(c) if callable(data) else data)
    return step


def truncate(template: str, keep: int) -> Callable[[Ctx], None]:
    def step(c: Ctx) -> None:
        path = c.path(template)
        path.write_bytes(path.read_bytes()[:keep])
    return step


def mkdir(template: str) -> Callable[[Ctx], None]:
    return lambda c: c.path(template).mkdir(parents=True, exist_ok=True)


def replace_by_dir(template: str) -> Callable[[Ctx], None]:
    def step(c: Ctx) -> None:
        path = c.path(template)
        path.unlink()
        path.mkdir()
    return step


def copy(src: str, dst: str) -> Callable[[Ctx], None]:
    def step(c: Ctx) -> None:
        target = c.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if c.path(src).is_dir() else shutil.copy)(c.path(src), target)
    return step


def edit_manifest(change: Callable[[dict], Any], folder: str = "{b}") -> Callable[[Ctx], None]:
    def step(c: Ctx) -> None:
        path = c.path(folder) / "manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))
    return step


def rehash(name: str, folder: str = "{b}") -> Callable[[Ctx], None]:
    """Make the manifest's sha256 of export file ``name`` match its (changed) bytes: not caught as tampering."""
    def step(c: Ctx) -> None:
        from edgecnn.fileio import sha256_file

        path = c.path(folder) / "manifest.json"
        manifest = json.loads(path.read_text())
        for entry in manifest["exports"].values():
            if entry["file"] == name:
                entry["sha256"] = sha256_file(c.path(folder) / name)
        path.write_text(json.dumps(manifest))
    return step


def idx_bytes(array: np.ndarray) -> Callable[[Ctx], bytes]:
    def make(c: Ctx) -> bytes:
        tmp = c.root / "made.idx.gz"
        write_idx(tmp, array)
        return tmp.read_bytes()
    return make


def huge_png_header(c: Ctx) -> bytes:
    """A PNG whose header declares 100,000 x 100,000 pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def truncated_tiff(c: Ctx) -> bytes:
    """A TIFF cut inside its tag table: Pillow warns about corrupt EXIF data, then fails."""
    from PIL import Image

    tmp = c.root / "full.tif"
    Image.fromarray(np.arange(900, dtype=np.uint8).reshape(30, 30), "L").save(tmp)
    return tmp.read_bytes()[:118]


def zip_without_config(c: Ctx) -> bytes:
    tmp = c.root / "junk.zip"
    with zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr("hello.txt", "not a model")
    return tmp.read_bytes()


def pickled_npz(c: Ctx) -> bytes:
    tmp = c.root / "evil.npz"
    np.savez(tmp, x=np.array([{"not": "an image"}], dtype=object))  # needs pickle to load
    return tmp.read_bytes()


# ------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    """One command on one bad (or unusual but valid) input."""

    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...] = ()  # in the error line (or the stdout line for "gate", the stdout for "ok")
    code: int = 2
    setup: tuple[Callable[[Ctx], None], ...] = ()
    expect: str = "error"  # "error": one error: line; "gate": exit 1 with a failure line on stdout; "ok": works
    creates: tuple[str, ...] = ()  # files an "ok" case must have written
    env: tuple[tuple[str, str], ...] = ()  # environment variables (templates)


def C(id: str, args: str | list, needles: tuple | list = (), code: int = 2, setup: tuple | list = (),
      expect: str = "error", creates: tuple | list = (), env: dict | None = None) -> Case:
    argv = tuple(args.split()) if isinstance(args, str) else tuple(args)
    return Case(id, argv, tuple(needles), code, tuple(setup), expect, tuple(creates), tuple((env or {}).items()))


#: Verify against the saved reference_probs.npy, as on a device: no TensorFlow import, fast.
NO_TF = {"PYTHONPATH": "{no_tf}"}


TRAIN = "train --out {tmp}/out --data-dir {idx}"
UNICODE = "dätä ünï cödé 模型"

CASES: list[Case] = [
    # ---- train: IDX data
    C("train-data-dir-missing", "train --out {tmp}/out --data-dir {tmp}/nowhere", ["{tmp}/nowhere", "not found"]),
    C("train-data-dir-empty", "train --out {tmp}/out --data-dir {empty_dir}", ["{empty_dir}", "is empty"]),
    C("train-data-dir-is-a-file", "train --out {tmp}/out --data-dir {file}", ["{file}", "is a file, not a .npz"]),
    C("train-idx-truncated", TRAIN, ["{idx}/" + TI, "truncated"], setup=[truncate("{idx}/" + TI, 100)]),
    C("train-idx-empty", TRAIN, ["{idx}/" + TL, "too short"], setup=[write("{idx}/" + TL, b"")]),
    C("train-idx-is-a-png", TRAIN, ["{idx}/" + XI, "wrong magic number"],
      setup=[write("{idx}/" + XI, lambda c: Path(c["png"]).read_bytes())]),
    C("train-idx-is-a-folder", TRAIN, ["{idx}/" + XL + " is a folder"], setup=[replace_by_dir("{idx}/" + XL)]),
    C("train-idx-payload-shorter-than-header", TRAIN, ["{idx}/" + TI, "header declares"],
      setup=[write("{idx}/" + TI, lambda c: gzip.compress(gzip.decompress(Path(c["idx"], TI).read_bytes())[:-7]))]),
    C("train-idx-labels-count-mismatch", TRAIN, ["{idx}", "600 images but 599 labels"],
      setup=[write("{idx}/" + TL, idx_bytes(np.zeros(599, np.uint8)))]),
    C("train-idx-label-out-of-range", TRAIN, ["{idx}/" + XL, "label 12"],
      setup=[write("{idx}/" + XL, idx_bytes(np.full(300, 12, np.uint8)))]),
    C("train-idx-images-not-3d", TRAIN, ["{idx}/" + XI, "expected images (N,H,W)"],
      setup=[write("{idx}/" + XI, idx_bytes(np.zeros((300, 784), np.uint8)))]),
    # ---- train: options
    C("train-epochs-zero", TRAIN + " --epochs 0", ["--epochs", "at least 1"]),
    C("train-epochs-negative", TRAIN + " --epochs -3", ["--epochs", "-3"]),
    C("train-epochs-absurd", TRAIN + " --epochs 99999999999999999999", ["--epochs", "at most"]),
    C("train-batch-size-non-numeric", TRAIN + " --batch-size abc", ["--batch-size", "'abc' is not a valid integer"]),
    C("train-batch-size-absurd", TRAIN + " --batch-size 99999999999999999999", ["--batch-size", "at most"]),
    C("train-seed-negative", TRAIN + " --seed -1", ["--seed", "between 0 and"]),
    C("train-limit-too-small", TRAIN + " --limit 3", ["--limit", "at least"]),
    C("train-limit-larger-than-data", TRAIN + " --limit 100000", ["--limit 100000", "larger than", "{idx}"]),
    C("train-unknown-option", TRAIN + " --epoch 3", ["--epoch", "No such option"]),
    # ---- train: output folder
    C("train-out-is-a-file", "train --out {file} --data-dir {idx}", ["{file}", "is a file"]),
    C("train-out-under-a-file", "train --out {file}/sub --data-dir {idx}", ["cannot write", "{file} is a file"]),
    C("train-works-with-unicode-and-spaces",
      ["train", "--out", "{tmp}/out dir/" + UNICODE, "--data-dir", "{tmp}/" + UNICODE + " data", "--limit", "100",
       "--epochs", "1"], ["trained 1 epochs"], code=0, expect="ok", setup=[copy("{I}", "{tmp}/" + UNICODE + " data")],
      creates=["{tmp}/out dir/" + UNICODE + "/model.keras"]),

    # ---- summary
    C("explain-model-missing", "explain --model {tmp}/none.keras", ["{tmp}/none.keras", "not found"]),
    C("explain-negative-budget", "explain --max-accuracy-drop -1", ["--max-accuracy-drop", "-1"]),
    C("web-not-a-bundle", "web {empty_dir} --out {tmp}/web", ["{empty_dir}", "no manifest.json"]),
    C("web-out-is-a-file", "web {B} --out {B}/manifest.json", ["{B}/manifest.json", "is a file"]),
    C("summary-model-missing", "summary --model {tmp}/none.keras", ["{tmp}/none.keras", "not found"]),
    C("summary-model-empty", "summary --model {tmp}/empty.keras", ["{tmp}/empty.keras", "not a valid .keras"],
      setup=[write("{tmp}/empty.keras", b"")]),
    C("summary-model-truncated", "summary --model {tmp}/t.keras", ["{tmp}/t.keras", "truncated"],
      setup=[copy("{B}/model.keras", "{tmp}/t.keras"), truncate("{tmp}/t.keras", 5000)]),
    C("summary-model-is-a-folder", "summary --model {empty_dir}", ["{empty_dir}", "is a folder"]),
    C("summary-model-wrong-type", "summary --model {B}/model_fp32.onnx", ["{B}/model_fp32.onnx", "expected a .keras"]),
    C("summary-model-zip-without-config", "summary --model {tmp}/junk.keras", ["{tmp}/junk.keras", "config.json"],
      setup=[write("{tmp}/junk.keras", zip_without_config)]),
    C("summary-works-with-unicode-and-spaces", ["summary", "--model", "{tmp}/" + UNICODE + "/model.keras"],
      ["333,526"], code=0, expect="ok", setup=[copy("{B}/model.keras", "{tmp}/" + UNICODE + "/model.keras")]),

    # ---- export
    C("export-model-missing", "export --model {tmp}/none.keras", ["{tmp}/none.keras", "not found"]),
    C("export-model-truncated", "export --model {tmp}/t.keras", ["{tmp}/t.keras", "not a valid .keras"],
      setup=[copy("{B}/model.keras", "{tmp}/t.keras"), truncate("{tmp}/t.keras", 70_000)]),
    C("export-model-is-tflite", "export --model {B}/model_fp32.tflite", ["{B}/model_fp32.tflite", "expected a .keras"]),
    C("export-format-unknown", "export --model {B}/model.keras --format tflite-int4", ["--format", "tflite-int4"]),
    C("export-calibration-samples-zero", "export --model {B}/model.keras --calibration-samples 0",
      ["--calibration-samples", "at least 1"]),
    C("export-calibration-samples-non-numeric", "export --model {B}/model.keras --calibration-samples many",
      ["--calibration-samples", "'many'"]),
    C("export-opset-out-of-range", "export --model {B}/model.keras --opset 99", ["--opset", "between 13 and 18"]),
    C("export-out-under-a-file", "export --model {B}/model.keras --format tflite --out {file}/sub --data-dir {I}",
      ["cannot write", "{file} is a file"]),
    C("export-calibration-data-pickled", "export --model {B}/model.keras --format tflite-int8 --out {tmp}/o "
      "--calibration-data {tmp}/evil.npz", ["{tmp}/evil.npz", "allow_pickle=False"],
      setup=[write("{tmp}/evil.npz", pickled_npz)]),
    C("export-works-with-unicode-and-spaces",
      ["export", "--model", "{tmp}/" + UNICODE + "/model.keras", "--format", "tflite", "--out", "{tmp}/ëxport dir",
       "--data-dir", "{I}"], ["model_fp32.tflite"], code=0, expect="ok",
      setup=[copy("{B}/model.keras", "{tmp}/" + UNICODE + "/model.keras")],
      creates=["{tmp}/ëxport dir/model_fp32.tflite", "{tmp}/ëxport dir/manifest.json"]),

    # ---- verify: manifests
    C("verify-target-missing", "verify {tmp}/nowhere", ["{tmp}/nowhere", "not found"]),
    C("verify-folder-without-manifest", "verify {empty_dir}", ["{empty_dir}", "manifest.json"]),
    C("verify-manifest-empty", "verify {b} --data-dir {I}", ["{b}/manifest.json", "is empty"],
      setup=[write("{b}/manifest.json", b"")]),
    C("verify-manifest-truncated", "verify {b} --data-dir {I}", ["{b}/manifest.json", "not valid JSON"],
      setup=[truncate("{b}/manifest.json", 300)]),
    C("verify-manifest-not-utf8", "verify {b} --data-dir {I}", ["{b}/manifest.json", "cannot read"],
      setup=[write("{b}/manifest.json", b"\xff\xfe{\x00}")]),
    C("verify-manifest-is-a-folder", "verify {b} --data-dir {I}", ["{b}/manifest.json", "is a folder"],
      setup=[replace_by_dir("{b}/manifest.json")]),
    C("verify-manifest-is-a-list", "verify {b} --data-dir {I}", ["{b}/manifest.json", "JSON object"],
      setup=[write("{b}/manifest.json", b"[1, 2]")]),
    C("verify-manifest-exports-wrong-type", "verify {b} --data-dir {I}", ["{b}/manifest.json", "field exports must be an object, got a list"],
      setup=[edit_manifest(lambda m: m.update(exports=["tflite"]))]),
    C("verify-manifest-field-missing", "verify {b} --data-dir {I}", ["{b}/manifest.json", "field exports.onnx.sha256 is missing"],
      setup=[edit_manifest(lambda m: m["exports"]["onnx"].pop("sha256"))]),
    C("verify-manifest-field-wrong-type", "verify {b} --data-dir {I}", ["{b}/manifest.json", "field exports.onnx.precision must be a string, got a number"],
      setup=[edit_manifest(lambda m: m["exports"]["onnx"].update(precision=32))]),
    C("verify-manifest-file-escapes-bundle", "verify {b} --data-dir {I}", ["{b}/manifest.json", "/etc/passwd"],
      setup=[edit_manifest(lambda m: m["exports"]["onnx"].update(file="/etc/passwd"))]),
    C("verify-manifest-class-names-wrong-type", "verify {b} --data-dir {I}", ["{b}/manifest.json", "class_names"],
      setup=[edit_manifest(lambda m: m.update(class_names="T-shirt"))]),
    C("verify-sha256-mismatch", "verify {b}/model_fp32.onnx --data-dir {I}", ["tampered", "model_fp32.onnx"],
      code=1, expect="gate", env=NO_TF, setup=[write("{b}/model_fp32.onnx", lambda c: Path(c["B"], "model_fp32.onnx")
                                                      .read_bytes()[:-10] + b"0123456789")]),
    C("verify-export-random-bytes", "verify {b}/model_fp32.tflite --data-dir {I}", ["cannot run", "model_fp32.tflite"],
      code=1, expect="gate", env=NO_TF, setup=[write("{b}/model_fp32.tflite", bytes(range(256)) * 40),
                                                rehash("model_fp32.tflite")]),
    # ---- verify: options and data
    C("verify-atol-negative", "verify {B} --atol -1", ["--atol", "-1"]),
    C("verify-min-agreement-over-100", "verify {B} --min-agreement 150", ["--min-agreement", "150"]),
    C("verify-max-drop-non-numeric", "verify {B} --max-accuracy-drop lots", ["--max-accuracy-drop", "'lots'"]),
    C("verify-data-dir-empty", "verify {B} --data-dir {empty_dir}", ["{empty_dir}", "is empty"]),
    C("verify-reference-missing", "verify {B}/model_fp32.onnx --data-dir {I} --reference {tmp}/none.keras",
      ["{tmp}/none.keras", "not found"]),
    C("verify-works-with-unicode-and-spaces", ["verify", "{tmp}/" + UNICODE + "/model_fp32.tflite", "--data-dir",
                                               "{tmp}/ïdx dir"], ["PASS", "reference_probs.npy"], code=0, expect="ok",
      env=NO_TF,
      setup=[copy("{B}", "{tmp}/" + UNICODE), copy("{I}", "{tmp}/ïdx dir")],
      creates=["{tmp}/" + UNICODE + "/verify.json"]),
    # ---- verify --arch arm64 and its environment (option errors come before any emulator is looked for)
    C("verify-cpu-without-arch", "verify {B} --cpu cortex-a53", ["--cpu", "--arch arm64"]),
    C("verify-arch-unknown-cpu", "verify {B} --arch arm64 --cpu cortex-a99", ["cortex-a99", "unknown ARM CPU"]),
    C("verify-arch-images-zero", "verify {B} --arch arm64 --images 0", ["--images", "0"]),
    C("arm64-setup-target-missing", "arm64 setup {tmp}/none", ["{tmp}/none", "not found"]),
    C("arm64-setup-target-wrong-type", "arm64 setup {file}", ["{file}", "unknown model type"]),

    # ---- bench
    C("bench-target-missing", "bench {tmp}/none.onnx", ["{tmp}/none.onnx", "not found"]),
    C("bench-target-wrong-type", "bench {file}", ["{file}", "unknown model type"]),
    C("bench-runs-zero", "bench {B}/model_fp32.onnx --runs 0", ["--runs", "0"]),
    C("bench-runs-absurd", "bench {B}/model_fp32.onnx --runs 99999999999999", ["--runs", "99999999999999"]),
    C("bench-runs-non-numeric", "bench {B}/model_fp32.onnx --runs lots", ["--runs", "'lots'"]),
    C("bench-warmup-negative", "bench {B}/model_fp32.onnx --warmup -1", ["--warmup", "-1"]),
    C("bench-batch-sizes-garbage", "bench {B}/model_fp32.onnx --batch-sizes 1,x", ["--batch-sizes", "'x'"]),
    C("bench-threads-zero", "bench {B}/model_fp32.onnx --threads 0", ["--threads", "0"]),
    C("bench-json-under-a-file", "bench {B}/model_fp32.onnx --runs 2 --warmup 0 --json {file}/b.json",
      ["{file}", "is a file"]),
    C("bench-model-empty-tflite", "bench {tmp}/e.tflite --runs 2 --warmup 0", ["{tmp}/e.tflite", "empty"],
      setup=[write("{tmp}/e.tflite", b"")]),
    C("bench-model-random-bytes", "bench {tmp}/rand.onnx --runs 2 --warmup 0", ["{tmp}/rand.onnx", "corrupt"],
      setup=[write("{tmp}/rand.onnx", bytes(range(256)) * 8)]),
    C("bench-works-with-unicode-and-spaces", ["bench", "{tmp}/bënch dir/model_fp32.onnx", "--runs", "3", "--warmup",
                                              "1", "--batch-sizes", "1", "--threads", "1"], ["onnx"], code=0,
      expect="ok", setup=[copy("{B}/model_fp32.onnx", "{tmp}/bënch dir/model_fp32.onnx")],
      creates=["{tmp}/bënch dir/bench.json"]),

    # ---- predict: images (exit 1: the other images would still be predicted)
    C("predict-image-missing", "predict {tmp}/none.png --model {B}/model_fp32.onnx", ["{tmp}/none.png", "not found"],
      code=1),
    C("predict-image-empty", "predict {tmp}/e.png --model {B}/model_fp32.onnx", ["{tmp}/e.png", "empty"], code=1,
      setup=[write("{tmp}/e.png", b"")]),
    C("predict-image-truncated", "predict {tmp}/t.png --model {B}/model_fp32.onnx", ["{tmp}/t.png", "truncated"],
      code=1, setup=[write("{tmp}/t.png", lambda c: Path(c["png"]).read_bytes()[:60])]),
    C("predict-image-is-text", "predict {file} --model {B}/model_fp32.onnx", ["{file}", "not an image"], code=1),
    C("predict-image-bomb", "predict {tmp}/bomb.png --model {B}/model_fp32.onnx", ["{tmp}/bomb.png", "megapixel"],
      code=1, setup=[write("{tmp}/bomb.png", huge_png_header)]),
    C("predict-image-truncated-tiff", "predict {tmp}/t.tif --model {B}/model_fp32.onnx", ["{tmp}/t.tif", "truncated"],
      code=1, setup=[write("{tmp}/t.tif", truncated_tiff)]),
    C("predict-folder-without-images", "predict {empty_dir} --model {B}/model_fp32.onnx",
      ["{empty_dir}", "no image files"], code=1),
    # ---- predict: models and options
    C("predict-model-missing", "predict {png} --model {tmp}/none.tflite", ["{tmp}/none.tflite", "not found"]),
    C("predict-model-empty", "predict {png} --model {tmp}/e.onnx", ["{tmp}/e.onnx", "empty"],
      setup=[write("{tmp}/e.onnx", b"")]),
    C("predict-model-truncated-onnx", "predict {png} --model {tmp}/t.onnx", ["{tmp}/t.onnx", "corrupt"],
      setup=[copy("{B}/model_fp32.onnx", "{tmp}/t.onnx"), truncate("{tmp}/t.onnx", 100_000)]),
    C("predict-model-truncated-tflite", "predict {png} --model {tmp}/t.tflite", ["{tmp}/t.tflite", "corrupt"],
      setup=[copy("{B}/model_int8.tflite", "{tmp}/t.tflite"), truncate("{tmp}/t.tflite", 50_000)]),
    C("predict-model-is-an-image", "predict {png} --model {tmp}/m.tflite", ["{tmp}/m.tflite", "not TFLite"],
      setup=[write("{tmp}/m.tflite", lambda c: Path(c["png"]).read_bytes())]),
    C("predict-model-unknown-type", "predict {png} --model {tmp}/m.pt", ["{tmp}/m.pt", "unknown model type"],
      setup=[write("{tmp}/m.pt", b"\x80\x04K\x01.")]),
    C("predict-model-is-a-folder", "predict {png} --model {empty_dir}", ["{empty_dir}", "is a folder"]),
    C("predict-top-k-zero", "predict {png} --model {B}/model_fp32.onnx --top-k 0", ["--top-k", "0"]),
    C("predict-top-k-non-numeric", "predict {png} --model {B}/model_fp32.onnx --top-k three", ["--top-k", "'three'"]),
    C("predict-threads-negative", "predict {png} --model {B}/model_fp32.onnx --threads -2", ["--threads", "-2"]),
    C("predict-threads-absurd", "predict {png} --model {B}/model_fp32.onnx --threads 100000", ["--threads", "100000"]),
    C("predict-plot-under-a-file", "predict {png} --model {B}/model_fp32.onnx --plot {file}/p.png",
      ["{file}/p.png", "{file} is a file"]),
    C("predict-manifest-class-names-mismatch", "predict {png} --model {b}/model_fp32.onnx", ["{b}/manifest.json", "3 class names", "10 outputs"],
      setup=[edit_manifest(lambda m: m.update(class_names=["a", "b", "c"]))]),
    C("predict-works-with-unicode-and-spaces",
      ["predict", "{tmp}/ïmage dir/シャツ 1.png", "--model", "{tmp}/" + UNICODE + "/model_int8.tflite"],
      ["シャツ 1.png:"], code=0, expect="ok",
      setup=[copy("{png}", "{tmp}/ïmage dir/シャツ 1.png"), copy("{B}", "{tmp}/" + UNICODE)]),

    # ---- report and pipeline
    C("report-folder-missing", "report {tmp}/nowhere", ["{tmp}/nowhere", "not found"]),
    C("report-folder-is-a-file", "report {file}", ["{file}", "not a folder"]),
    C("report-html-is-a-folder", "report {b}", ["{b}/report.html", "is a folder"], setup=[mkdir("{b}/report.html")]),
    C("report-works-with-unicode-and-spaces", ["report", "{tmp}/" + UNICODE], ["report.html"], code=0, expect="ok",
      setup=[copy("{B}", "{tmp}/" + UNICODE)], creates=["{tmp}/" + UNICODE + "/report.html"]),
    C("pipeline-epochs-zero", "pipeline --out {tmp}/p --epochs 0 --data-dir {I}", ["--epochs", "at least 1"]),
    C("pipeline-out-under-a-file", "pipeline --out {file}/p --data-dir {I}", ["cannot write", "{file} is a file"]),
    C("pipeline-data-dir-missing", "pipeline --out {tmp}/p --data-dir {tmp}/nowhere", ["{tmp}/nowhere", "not found"]),
]


@pytest.fixture
def shared(tiny_bundle, tiny_data) -> tuple[Path, Path]:
    return tiny_bundle, tiny_data


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, shared, tmp_path):
    ctx = Ctx(tmp_path, *shared)
    for step in case.setup:
        step(ctx)
    args = [a.format_map(ctx) for a in case.args]
    needles = [n.format_map(ctx) for n in case.needles]
    env = {k: v.format_map(ctx) for k, v in case.env}
    proc = run_cli(*args, timeout=300, env=env) if env else invoke(*args)
    assert not re.search(r"\w+Warning: ", proc.stderr), f"Python warning noise on stderr:\n{proc.stderr}"
    if case.expect == "error":
        assert_one_line_error(proc, *needles, code=case.code)
        return
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == case.code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    if case.expect == "gate":  # a failed gate: reported on stdout, one line naming the file and the problem
        assert any(all(n in line for n in needles) for line in proc.stdout.splitlines()), proc.stdout
        return
    assert not [line for line in proc.stderr.splitlines() if line.startswith("error:")], proc.stderr
    for needle in needles:
        assert needle in proc.stdout, (needle, proc.stdout)
    for created in case.creates:
        assert ctx.path(created).stat().st_size > 0, created


def test_battery_covers_every_command_and_enough_cases():
    from edgecnn.cli import cli

    commands = {case.args[0] for case in CASES}
    assert set(cli.commands) <= commands  # a command added to the CLI needs its cases here
    assert len(CASES) >= 30
    assert {case.id.split("-")[0] for case in CASES if case.expect == "ok"} >= {
        "train", "export", "verify", "bench", "predict", "summary", "report"}
