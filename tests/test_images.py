"""Image files to model inputs: formats, modes, auto-inversion, trimming, and one-line errors."""
from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.datasets.fashion_mnist import FILES, read_idx
from edgecnn.preprocess import MAX_PIXELS, ImageError, image_files, load_image

from .conftest import REAL_DATA


def garment(seed: int = 0, size: int = 28) -> np.ndarray:
    """A light blob on a black background, like a Fashion-MNIST image (border all zero)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), dtype=np.uint8)
    image[4:size - 3, 6:size - 5] = rng.integers(40, 256, (size - 7, size - 11))
    return image


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but holds a few bytes of pixels: cheap to make, huge to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def expected(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) / np.float32(255.0)


def test_model_sized_png_gives_the_exact_array(tmp_path):
    arrays = [garment(i) for i in range(5)]
    if REAL_DATA is not None:
        arrays += list(read_idx(REAL_DATA / FILES["x_test"])[:50])  # the test images only: a fraction of a second
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(tmp_path / f"{i}.png")
        loaded = load_image(tmp_path / f"{i}.png")
        assert loaded.dtype == np.float32 and loaded.shape == (28, 28)
        assert np.array_equal(loaded, expected(array)), i


def test_dark_on_light_rgb_is_inverted_back_exactly(tmp_path):
    array = garment(1)
    Image.fromarray(255 - array).convert("RGB").save(tmp_path / "inv.png")
    assert np.array_equal(load_image(tmp_path / "inv.png"), expected(array))
    assert np.array_equal(load_image(tmp_path / "inv.png", invert=False), expected(255 - array))
    assert np.array_equal(load_image(Image.fromarray(array), invert=True), expected(255 - array))
    # a model trained on light backgrounds wants the opposite; an unknown background is never auto-inverted
    assert np.array_equal(load_image(Image.fromarray(array), background="light"), expected(255 - array))
    assert np.array_equal(load_image(Image.fromarray(255 - array), background=None), expected(255 - array))


def _modes(array: np.ndarray) -> dict[str, Image.Image]:
    """The same dark-background garment in every mode the issue names (values kept where the mode can)."""
    gray = Image.fromarray(array)
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = (255 - array)[..., None]  # dark garment ...
    rgba[..., 3] = np.where(array > 0, 255, 0)  # ... on a transparent background: composited on white
    la = np.stack([255 - array, np.where(array > 0, 255, 0).astype(np.uint8)], axis=-1)
    return {
        "1": gray.point(lambda v: 255 if v > 127 else 0).convert("1"),
        "L": gray,
        "LA": Image.fromarray(la, "LA"),
        "P": gray.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
        "RGB": gray.convert("RGB"),
        "RGBA": Image.fromarray(rgba, "RGBA"),
        "I;16": Image.fromarray(array.astype(np.uint16) * 257),
    }


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("GIF", ".gif"),
                                         ("TIFF", ".tif"), ("WEBP", ".webp")])
def test_every_format_and_mode_loads(tmp_path, fmt, suffix):
    array = garment(2)
    lossless = fmt in ("PNG", "BMP", "TIFF") or fmt == "WEBP"
    saved = 0
    for mode, image in _modes(array).items():
        if mode == "I;16" and fmt not in ("PNG", "TIFF"):
            continue  # only these store 16-bit gray; Pillow would clip it when converting for the others
        path = tmp_path / f"{mode.replace(';', '')}{suffix}"
        try:
            image.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        except (OSError, ValueError, KeyError):
            continue  # this format cannot store this mode
        saved += 1
        loaded = load_image(path)
        assert loaded.shape == (28, 28) and loaded.dtype == np.float32, (fmt, mode)
        want = expected(np.where(array > 127, 255, 0).astype(np.uint8) if mode == "1" else array)
        if lossless and mode != "P":
            assert np.abs(loaded - want).max() <= 1 / 255 + 1e-6, (fmt, mode)
        else:  # palettes and JPEG: close, and the garment still light on dark
            assert np.abs(loaded - want).mean() < 0.03, (fmt, mode)
    assert saved >= 2


def test_sixteen_bit_and_transparency_exactly(tmp_path):
    array = garment(3)
    Image.fromarray(array.astype(np.uint16) * 257).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode == "I;16"
    assert np.array_equal(load_image(tmp_path / "16.png"), expected(array))
    _modes(array)["RGBA"].save(tmp_path / "alpha.png")
    assert np.array_equal(load_image(tmp_path / "alpha.png"), expected(array))


def test_gif_uses_the_first_frame(tmp_path):
    first, second = garment(4), garment(5)
    frames = [Image.fromarray(a).convert("P") for a in (first, second)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert np.array_equal(load_image(tmp_path / "anim.gif"), expected(first))


def test_large_photo_is_trimmed_resized_and_centered():
    photo = np.full((200, 400), 235, dtype=np.uint8)  # light background, object 100 wide x 50 high
    photo[120:170, 40:140] = 30
    loaded = load_image(Image.fromarray(photo).convert("RGB"))
    assert loaded.shape == (28, 28)
    assert loaded[0, 0] == pytest.approx(20 / 255)  # inverted background (255 - 235)
    rows, cols = np.flatnonzero((loaded > 0.5).any(axis=1)), np.flatnonzero((loaded > 0.5).any(axis=0))
    assert cols[0] <= 1 and cols[-1] >= 26  # the long edge fills the width
    assert 11 <= rows.size <= 16 and abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1  # half as high, centered


def test_upscaled_image_comes_back_close_to_the_original():
    array = np.zeros((28, 28), dtype=np.uint8)
    array[2:26, 0:28] = 200
    loaded = load_image(Image.fromarray(array).resize((56, 56), Image.Resampling.NEAREST))
    assert np.abs(loaded - expected(array)).mean() < 0.03


def test_three_channel_models_get_rgb():
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[5:20, 5:20] = (200, 10, 10)
    loaded = load_image(Image.fromarray(rgb), channels=3)
    assert loaded.shape == (28, 28, 3) and np.array_equal(loaded, expected(rgb))


def test_huge_images_are_refused_before_decoding(tmp_path):
    path = png_header_only(tmp_path / "huge.png", 8000, 7000)  # 56 MP: over our limit, under Pillow's warning
    started = time.perf_counter()
    with pytest.raises(ImageError, match="megapixel") as caught:
        load_image(path)
    assert time.perf_counter() - started < 0.5
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    # beyond Pillow's own bomb limit it raises first: still our one-line error
    with pytest.raises(ImageError, match="megapixel"):
        load_image(png_header_only(tmp_path / "bomb.png", 20000, 20000))
    assert MAX_PIXELS == 50_000_000
    with pytest.raises(ImageError, match="megapixel"):
        load_image(Image.new("L", (300, 300)), max_pixels=80_000)


@pytest.mark.parametrize("make, needle", [
    (lambda p: p.write_text("not an image at all"), "not an image"),
    (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    (lambda p: p.write_bytes(_png_bytes()[:200]), "truncated"),
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_bad_files_get_one_line_errors_naming_them(tmp_path, make, needle):
    path = tmp_path / "input.png"
    make(path)
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = str(caught.value)
    assert needle in message and str(path) in message and "\n" not in message
    assert caught.value.exit_code == 2


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_image_files_expands_folders(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b.PNG", "a.jpg", "notes.txt", ".hidden.png", "c.webp"):
        (folder / name).write_bytes(b"x")
    (folder / "sub.png").mkdir()
    single = tmp_path / "single.dat"
    assert image_files([single, folder]) == [single, folder / "a.jpg", folder / "b.PNG", folder / "c.webp"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no image files") as caught:
        image_files([tmp_path / "empty"])
    assert str(tmp_path / "empty") in str(caught.value)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="invert"):
        load_image(Image.new("L", (28, 28)), invert="sometimes")
    with pytest.raises(ValueError, match="channels"):
        load_image(Image.new("L", (28, 28)), channels=2)
