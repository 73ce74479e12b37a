"""Property-based tests: the data readers and preprocessing on random input.

Every function that takes bytes or arrays from the user must either return a
correct result or raise its documented error (a one-line EdgecnnError subclass,
or ValueError for the array API); any other exception is a bug.
"""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgecnn.datasets.fashion_mnist import read_idx
from edgecnn.export import FORMATS as EXPORT_FORMATS
from edgecnn.preprocess import to_model_input
from edgecnn.errors import DataError

from .conftest import write_idx

# Pillow warns about damaged metadata (e.g. "Corrupt EXIF data") before failing: noise here, the error is checked.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:PIL.*"),
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]  # huge headers on purpose
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------- IDX reader


def _read(tmp_path, raw: bytes, name: str = "fuzz.idx"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path, read_idx(path)


def _check_idx_result(path, raw: bytes, array: np.ndarray) -> None:
    """A successful read returns exactly the payload that the header declares."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    assert array.dtype == np.uint8 and array.shape == dims, path
    assert array.tobytes() == raw[4 + 4 * ndim:]


@FUZZ
@given(raw=st.binary(max_size=400), gz=st.booleans())
def test_read_idx_random_bytes(tmp_path, raw, gz):
    raw = gzip.compress(raw) if gz else raw
    try:
        path, array = _read(tmp_path, raw)
    except DataError as exc:
        assert "fuzz.idx" in str(exc) and "\n" not in str(exc)
        return
    _check_idx_result(path, raw, array)


@FUZZ
@given(dims=st.lists(st.integers(0, 6), min_size=1, max_size=4), cut=st.integers(-8, 8),
       gz=st.booleans(), corrupt=st.integers(0, 40), data=st.data())
def test_read_idx_valid_headers_truncated_or_padded_payloads(tmp_path, dims, cut, gz, corrupt, data):
    """Real IDX files, then truncated, padded, or with one byte of the gzip stream flipped."""
    array = data.draw(hnp.arrays(np.uint8, tuple(dims)))
    path = write_idx(tmp_path / "v.idx", array, compress=False)
    raw = path.read_bytes()
    raw = raw[:len(raw) + cut] if cut < 0 else raw + bytes(cut)
    if gz:
        raw = bytearray(gzip.compress(raw))
        if corrupt and corrupt < len(raw):
            raw[corrupt] ^= 0xFF
        raw = bytes(raw)
    try:
        path, result = _read(tmp_path, raw, "v.idx")
    except DataError as exc:
        assert "v.idx" in str(exc) and "\n" not in str(exc)
        assert cut != 0 or (gz and corrupt), exc  # an intact file must be read
        return
    _check_idx_result(path, raw, result)
    if cut == 0:
        assert np.array_equal(result, array)


# ---------------------------------------------------------- preprocessing

SHAPE = (4, 5, 1)
DTYPES = st.sampled_from([np.uint8, np.int8, np.int32, np.uint16, np.int64, np.float16, np.float32,
                          np.float64, np.bool_, np.complex64])


def _shapes():
    good = st.tuples(st.integers(0, 3)).map(lambda n: (n[0], *SHAPE))
    no_channel = st.tuples(st.integers(0, 3)).map(lambda n: (n[0], *SHAPE[:-1]))
    return st.one_of(good, no_channel, hnp.array_shapes(min_dims=0, max_dims=5, max_side=6))


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=_shapes())
def test_to_model_input_random_arrays(data, dtype, shape):
    x = data.draw(hnp.arrays(dtype, shape))
    try:
        out = to_model_input(x, SHAPE)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert out.dtype == np.float32 and out.shape == (x.shape[0], *SHAPE) and x.shape[0] >= 1
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    flat = x.reshape(out.shape)
    if x.dtype == np.uint8:
        np.testing.assert_array_equal(out, flat.astype(np.float32) / np.float32(255))
    else:
        assert np.issubdtype(x.dtype, np.floating)
        np.testing.assert_array_equal(out, flat.astype(np.float32))


@FUZZ
@given(x=hnp.arrays(np.float64, (2, *SHAPE), elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_to_model_input_rejects_floats_outside_unit_range(x):
    """Floats outside [0, 1] (or NaN/inf) are refused, never silently clipped."""
    with np.errstate(over="ignore"):
        as32 = x.astype(np.float32)
    inside = np.isfinite(as32).all() and as32.min() >= 0 and as32.max() <= 1
    if inside:
        assert to_model_input(x, SHAPE).dtype == np.float32
    else:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            to_model_input(x, SHAPE)


# ------------------------------------------------------------ image loader

PIL = pytest.importorskip("PIL.Image")
from edgecnn.preprocess import ImageError, load_image  # noqa: E402

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}
HEADERS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBP"]


def _check_loaded(path, **kwargs) -> np.ndarray | None:
    """load_image's contract: a (28, 28) float32 array in [0, 1], or an ImageError naming the file."""
    try:
        out = load_image(path, **kwargs)
    except ImageError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), exc
        return None
    channels = kwargs.get("channels", 1)
    assert out.dtype == np.float32 and out.shape == ((28, 28) if channels == 1 else (28, 28, 3))
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    return out


@FUZZ
@given(raw=st.binary(max_size=600), header=st.sampled_from([b"", *HEADERS]),
       suffix=st.sampled_from([".png", ".jpg", ".bin", ""]))
def test_load_image_random_bytes(tmp_path, raw, header, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(header + raw)
    _check_loaded(path)


@st.composite
def encoded_images(draw):
    """A random image of random size and mode, saved in a random format (combinations Pillow can write)."""
    from PIL import Image

    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(sorted(FORMATS)))
    width, height = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.frombytes("I;16", (width, height), rng.integers(0, 65536, width * height, dtype="<u2").tobytes())
    else:
        bands = {"1": 1, "L": 1, "LA": 2, "P": 1, "RGB": 3, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
        if draw(st.booleans()):  # a garment-like picture: a bright block on a flat background
            pixels[:] = rng.integers(0, 256)
            pixels[height // 4: 3 * height // 4 + 1, width // 4: 3 * width // 4 + 1] = rng.integers(0, 256)
        base = Image.fromarray(pixels[..., 0] if bands == 1 else pixels, {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands])
        image = base.convert(mode) if mode in ("1", "P") else base
    return image, fmt


def _save(image, fmt: str, path) -> bool:
    try:
        image.save(path, format=fmt)
    except (OSError, ValueError, KeyError):  # mode not writable in this format
        return False
    return True


@FUZZ
@given(sample=encoded_images(), channels=st.sampled_from([1, 3]), invert=st.sampled_from(["auto", True, False]))
def test_load_image_valid_images(tmp_path, sample, channels, invert):
    """Every image Pillow can write in a supported format loads to a correct array."""
    from hypothesis import assume

    image, fmt = sample
    path = tmp_path / f"img{FORMATS[fmt]}"
    assume(_save(image, fmt, path))
    out = _check_loaded(path, channels=channels, invert=invert)
    assert out is not None, f"a valid {image.mode} {fmt} of {image.size} was refused"


@FUZZ
@given(sample=encoded_images(), cut=st.floats(0.0, 1.0), flip=st.integers(0, 10_000))
def test_load_image_truncated_or_corrupted_images(tmp_path, sample, cut, flip):
    from hypothesis import assume

    image, fmt = sample
    path = tmp_path / f"img{FORMATS[fmt]}"
    assume(_save(image, fmt, path))
    raw = bytearray(path.read_bytes())
    raw = raw[: int(len(raw) * cut)]
    if raw and flip:
        raw[flip % len(raw)] ^= 0x5A
    path.write_bytes(bytes(raw))
    _check_loaded(path)


def test_load_image_exact_size_png_round_trips(tmp_path):
    """A dataset-sized grayscale PNG comes back as exactly its pixels / 255 (no resampling)."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    pixels[:2, :] = pixels[-2:, :] = pixels[:, :2] = pixels[:, -2:] = 0  # dark border: no auto-invert
    Image.fromarray(pixels, "L").save(tmp_path / "x.png")
    np.testing.assert_array_equal(load_image(tmp_path / "x.png"), pixels.astype(np.float32) / np.float32(255))


def _sample_image(mode: str):
    from PIL import Image

    rng = np.random.default_rng(0)
    if mode == "I;16":
        return Image.frombytes("I;16", (37, 23), rng.integers(0, 65536, 37 * 23, dtype="<u2").tobytes())
    return Image.fromarray(rng.integers(0, 256, (23, 37, 4), dtype=np.uint8), "RGBA").convert(mode)


def _writable(mode: str, fmt: str) -> bool:
    import io

    return _save(_sample_image(mode), fmt, io.BytesIO())


WRITABLE = [(mode, fmt) for mode in MODES for fmt in sorted(FORMATS) if _writable(mode, fmt)]


@pytest.mark.parametrize("mode, fmt", WRITABLE, ids=[f"{m}-{f}" for m, f in WRITABLE])
def test_load_image_every_mode_and_format(tmp_path, mode, fmt):
    """The fuzzed combinations, each once for sure: every mode Pillow can write in every format loads."""
    path = tmp_path / f"img{FORMATS[fmt]}"
    assert _save(_sample_image(mode), fmt, path)
    for channels in (1, 3):
        assert _check_loaded(path, channels=channels) is not None


# ------------------------------------------------------------ Predictor input

PREDICTOR_FILES = [fmt.file for fmt in EXPORT_FORMATS.values()]  # every export format


@pytest.fixture(scope="module")
def predictors(tiny_bundle):
    from edgecnn.runtime import Predictor

    return {name: Predictor.load(tiny_bundle / name) for name in PREDICTOR_FILES}


@settings(max_examples=100, deadline=None)
@given(data=st.data(), name=st.sampled_from(PREDICTOR_FILES),
       dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_]),
       shape=st.one_of(st.tuples(st.integers(0, 5)).map(lambda n: (n[0], 28, 28)),
                       st.tuples(st.integers(1, 5)).map(lambda n: (n[0], 28, 28, 1)),
                       hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_predictor_on_random_batches(predictors, data, name, dtype, shape):
    """Any array: ValueError, or probabilities (N, 10); uint8 pixels give exactly what x / 255 gives."""
    predictor = predictors[name]
    elements = st.floats(0, 1, width=32) if dtype in (np.float32, np.float64) and data.draw(st.booleans()) else None
    x = data.draw(hnp.arrays(dtype, shape, elements=elements))
    try:
        probs = predictor.predict(x)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert probs.dtype == np.float32 and probs.shape == (x.shape[0], 10)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1, atol=0.05)  # int8: 10 roundings of 1/256
    if x.dtype == np.uint8:
        np.testing.assert_array_equal(probs, predictor.predict(x.astype(np.float32) / np.float32(255)))
