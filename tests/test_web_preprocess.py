"""The page's JS preprocessing (static/preprocess.js) run in Node, against the preprocessing contract written
here with Pillow: stretch and center-crop (crop box, then Image.resize LANCZOS), the three input ranges, the
defaults of older bundles, logits -> softmax, and unknown values refused."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.preprocess import load_image

from .helpers import REPO

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js not installed")

PREPROCESS_JS = REPO / "edgecnn" / "web" / "static" / "preprocess.js"
DRIVER = """
import { readFileSync } from "node:fs";
import { toModelInput, toProbabilities } from "./preprocess.mjs";
const run = (c) => {
  if (c.logits) return { probs: toProbabilities(c.logits, c.preprocessing) };
  const r = toModelInput({ width: c.width, height: c.height, rgba: Uint8Array.from(c.rgba) }, c.preprocessing);
  return { data: Array.from(r.data), inverted: r.inverted };
};
const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(cases.map((c) => { try { return run(c); } catch (e) { return { error: e.message }; } })));
"""
#: One grey level of 255, in each input range: the most the JS Lanczos may differ from Pillow's fixed-point one.
LEVEL = {"0-1": 1 / 255, "0-255": 1.0, "-1-1": 2 / 255}


def crop_box(width: int, height: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """The contract's center-crop box (left, top, right, bottom): the largest centred box of the target's aspect."""
    if width / height > out_w / out_h:
        w = round(height * out_w / out_h)
        return (width - w) // 2, 0, (width - w) // 2 + w, height
    h = round(width * out_h / out_w)
    return 0, (height - h) // 2, width, (height - h) // 2 + h


def contract_input(image: Image.Image, preprocessing: dict) -> np.ndarray:
    """The contract's stretch / center-crop and input range with Pillow (for background None: no auto-invert)."""
    out = (preprocessing["width"], preprocessing["height"])
    image = image.convert("L" if preprocessing["channels"] == 1 else "RGB")
    if image.size != out:
        if preprocessing["resize"] == "center-crop":
            image = image.crop(crop_box(*image.size, *out))
        image = image.resize(out, Image.Resampling.LANCZOS)
    u8 = np.asarray(image)
    x01 = u8.astype(np.float32) / np.float32(255)
    return {"0-1": x01, "0-255": u8.astype(np.float32), "-1-1": x01 * np.float32(2) - np.float32(1)}[
        preprocessing["input_range"]]


def softmax(logits: np.ndarray) -> np.ndarray:
    """The contract's softmax: float32, max-subtracted."""
    e = np.exp((logits - logits.max(axis=-1, keepdims=True)).astype(np.float32))
    return e / e.sum(axis=-1, keepdims=True)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB test picture: gradients, a few boxes and noise, so every resize mode gives different pixels.

    Its values stay within 48..207: Lanczos overshoot then never clips in the intermediate 8-bit pass, where
    Pillow 13 (which picks the order of its two passes itself) and the JS port (horizontal first, as Pillow
    12 does) would part by more than a grey level.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 64 * 4], -1)
    for _ in range(4):
        top, left = rng.integers(0, height - 3), rng.integers(0, width - 3)
        rgb[top:top + height // 4, left:left + width // 5] = rng.integers(0, 256, 3)
    rgb = 48 + (rgb + rng.integers(-8, 9, rgb.shape)).clip(0, 255) * 159 // 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def run_js(tmp_path: Path, cases: list[dict]) -> list[dict]:
    """Each case through preprocess.js in Node: ``toModelInput`` on the image's RGBA bytes, or ``toProbabilities``."""
    shutil.copyfile(PREPROCESS_JS, tmp_path / "preprocess.mjs")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    for case in cases:
        if "image" in case:
            image = case.pop("image")
            case.update(width=image.width, height=image.height,
                        rgba=np.asarray(image.convert("RGBA")).ravel().tolist())
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([NODE, tmp_path / "driver.mjs", tmp_path / "cases.json"], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout)


def model(height: int, width: int, channels: int, **keys) -> dict:
    return {"height": height, "width": width, "channels": channels, "background": None, **keys}


def test_stretch_and_center_crop_match_pillow_in_every_input_range(tmp_path):
    wide, tall = photo(80, 37), photo(30, 61, seed=1)
    cases = [(wide, model(24, 32, 3, resize="center-crop", input_range="0-255")),   # wider than 4:3: cut the sides
             (tall, model(24, 32, 3, resize="center-crop", input_range="-1-1")),    # taller: cut top and bottom
             (tall, model(28, 28, 1, resize="center-crop", input_range="0-1")),
             (wide, model(28, 28, 1, resize="stretch", input_range="-1-1")),
             (tall, model(24, 32, 3, resize="stretch", input_range="0-255"))]
    results = run_js(tmp_path, [{"image": image, "preprocessing": p} for image, p in cases])
    for (image, p), result in zip(cases, results):
        assert "error" not in result, result
        want = contract_input(image, p)
        got = np.array(result["data"], dtype=np.float32).reshape(want.shape)
        assert np.abs(got - want).max() <= LEVEL[p["input_range"]] * 1.0001, (p, np.abs(got - want).max())
    # the modes differ by far more than the tolerance, so the comparison above tells them apart
    crop, stretch = (contract_input(wide, model(24, 32, 3, resize=r, input_range="0-255")) for r in ("center-crop", "stretch"))
    assert np.abs(crop - stretch).max() > 50


def test_an_image_at_the_model_size_is_taken_as_it_is_exactly(tmp_path):
    image = photo(32, 24, seed=2)
    kinds = [model(24, 32, 3, resize=r, input_range=x) for r in ("fit", "stretch", "center-crop")
             for x in ("0-1", "0-255", "-1-1")]
    for p, result in zip(kinds, run_js(tmp_path, [{"image": image, "preprocessing": p} for p in kinds])):
        want = contract_input(image, p)
        np.testing.assert_array_equal(np.array(result["data"], dtype=np.float32).reshape(want.shape), want)


def test_an_old_bundle_without_the_new_keys_gets_fit_and_zero_to_one(tmp_path):
    """Missing input_range/resize/output (and a leftover "scale") mean the reference's fit and [0, 1]."""
    canvas = Image.new("L", (90, 70), 255)
    canvas.paste(Image.fromarray(np.asarray(photo(40, 30, seed=3).convert("L"))), (30, 20))
    canvas.save(tmp_path / "old.png")
    old = {"height": 28, "width": 28, "channels": 1, "scale": 1 / 255, "background": "dark"}
    [result] = run_js(tmp_path, [{"image": canvas, "preprocessing": old}])
    got = np.array(result["data"], dtype=np.float32).reshape(28, 28)
    assert result["inverted"] and np.abs(got - load_image(tmp_path / "old.png")).max() <= 1 / 255 + 1e-7


def test_logits_become_probabilities_and_unknown_values_are_refused(tmp_path):
    logits = np.array([[3.5, -1.25, 0.0, 7.0, 2.0], [-300.0, -301.0, -299.5, -310.0, -300.0]], dtype=np.float32)
    base = model(24, 32, 3)
    cases = [{"logits": row.tolist(), "preprocessing": {**base, "output": "logits"}} for row in logits]
    cases += [{"logits": [0.2, 0.8], "preprocessing": base}]  # probabilities (the default) pass through
    cases += [{"image": photo(10, 10), "preprocessing": {**base, key: value}}
              for key, value in (("resize", "squash"), ("input_range", "0-100"), ("output", "scores"))]
    results = run_js(tmp_path, cases)
    got = np.array([r["probs"] for r in results[:2]], dtype=np.float32)
    assert np.abs(got - softmax(logits)).max() <= 1e-6 and np.isfinite(got).all()
    assert results[2]["probs"] == pytest.approx([0.2, 0.8])
    for result, needle in zip(results[3:], ('resize "squash"', 'input_range "0-100"', 'output "scores"')):
        assert needle in result.get("error", ""), result
