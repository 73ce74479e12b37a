"""A model's preprocessing: input ranges, resize modes and the dict every consumer reads."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgecnn.preprocess import (DEFAULT_PREPROCESSING, INPUT_RANGES, RESAMPLE, RESIZE_MODES, center_crop_box,
                                complete_preprocessing, load_image, range_affine, to_model_input)

PIXELS = np.arange(256, dtype=np.uint8).reshape(256, 1, 1, 1)


# ------------------------------------------------------------------ input ranges


def test_uint8_pixels_map_to_each_range_as_the_contract_writes_it():
    u8 = PIXELS.astype(np.float32)
    unit = u8 / np.float32(255)
    expected = {"0-1": unit, "0-255": u8, "-1-1": unit * np.float32(2) - np.float32(1)}
    for input_range, want in expected.items():
        out = to_model_input(PIXELS, (1, 1, 1), input_range)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, want, err_msg=input_range)
    assert to_model_input(PIXELS, (1, 1, 1), "0-255").max() == 255.0  # exact, not 254.99998
    assert to_model_input(PIXELS, (1, 1, 1), "-1-1")[[0, -1]].ravel().tolist() == [-1.0, 1.0]


def test_float_pixels_map_to_each_range_and_are_not_changed_in_place():
    x = np.linspace(0, 1, 50, dtype=np.float32).reshape(2, 5, 5)
    before = x.copy()
    np.testing.assert_array_equal(to_model_input(x, (5, 5, 1), "0-1")[..., 0], x)
    np.testing.assert_array_equal(to_model_input(x, (5, 5, 1), "0-255")[..., 0], x * np.float32(255))
    np.testing.assert_array_equal(to_model_input(x, (5, 5, 1), "-1-1")[..., 0], x * np.float32(2) - np.float32(1))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("input_range", INPUT_RANGES)
def test_range_affine_is_what_to_model_input_does_to_floats(input_range):
    x = np.linspace(0, 1, 25, dtype=np.float32).reshape(1, 5, 5, 1)
    scale, offset = range_affine(input_range)
    np.testing.assert_array_equal(to_model_input(x, (5, 5, 1), input_range),
                                  x * np.float32(scale) + np.float32(offset))


def test_unknown_range_and_bad_pixels_are_refused():
    with pytest.raises(ValueError, match="input_range must be one of"):
        to_model_input(PIXELS, (1, 1, 1), "0-100")
    with pytest.raises(ValueError, match="input_range"):
        range_affine("imagenet")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # the range applies after the pixel check, never instead
        to_model_input(np.full((1, 1, 1, 1), 200.0, np.float32), (1, 1, 1), "0-255")


# ------------------------------------------------------------------ the preprocessing dict


def test_older_preprocessing_is_completed_and_scale_dropped():
    old = {"height": 28, "width": 28, "channels": 1, "scale": 1 / 255, "background": "dark"}
    assert complete_preprocessing(old) == DEFAULT_PREPROCESSING
    bare = complete_preprocessing({"height": 32, "width": 24, "channels": 3})
    assert bare == {"height": 32, "width": 24, "channels": 3, "background": None, "input_range": "0-1",
                    "resize": "fit", "output": "probabilities"}
    full = {**DEFAULT_PREPROCESSING, "input_range": "-1-1", "resize": "center-crop", "output": "logits"}
    assert complete_preprocessing(full) == full


@pytest.mark.parametrize("change, needle", [
    ({"input_range": "0-100"}, "'input_range' must be one of"),
    ({"resize": "crop"}, "'resize'"),
    ({"output": "softmax"}, "'output'"),
    ({"background": "grey"}, "'background'"),
    ({"channels": 4}, "'channels'"),
    ({"channels": True}, "'channels'"),
    ({"channels": 3.0}, "'channels' must be a positive integer"),
    ({"background": 0}, "'background'"),
    ({"height": 0}, "'height' must be a positive integer"),
    ({"width": "28"}, "'width'"),
])
def test_bad_preprocessing_names_the_key(change, needle):
    with pytest.raises(ValueError, match=needle):
        complete_preprocessing({**DEFAULT_PREPROCESSING, **change})


def test_keys_of_a_newer_version_are_dropped_not_refused():
    assert complete_preprocessing({**DEFAULT_PREPROCESSING, "mean": 0.5, "scale": 1 / 255}) == DEFAULT_PREPROCESSING


@pytest.mark.parametrize("key", ["height", "width", "channels"])
def test_preprocessing_without_a_size_is_refused(key):
    with pytest.raises(ValueError, match=f"no '{key}'"):
        complete_preprocessing({k: v for k, v in DEFAULT_PREPROCESSING.items() if k != key})


# ------------------------------------------------------------------ resize modes


@pytest.mark.parametrize("source, target, box", [
    ((100, 50), (28, 28), (25, 0, 75, 50)),  # wider than the target: full height, centred columns
    ((50, 100), (32, 16), (0, 37, 50, 62)),  # taller: full width, rows from (100 - 25) // 2
    ((5, 3), (2, 1), (0, 0, 5, 2)),  # round(2.5) is 2: Python's round half to even, as preprocess.js must do
    ((60, 30), (40, 20), (0, 0, 60, 30)),  # same aspect ratio: the whole image
    ((1000, 1), (1, 100), (499, 0, 500, 1)),  # round(0.01) would be an empty box: at least 1
])
def test_center_crop_box(source, target, box):
    assert center_crop_box(source, target) == box


def _stripes(width: int = 60, height: int = 20) -> Image.Image:
    """Black side thirds around a white middle third: the centre crop of a square sees only white."""
    array = np.zeros((height, width), dtype=np.uint8)
    array[:, width // 3: 2 * width // 3] = 255
    return Image.fromarray(array)


def test_center_crop_keeps_the_centre_and_stretch_the_whole_image():
    image = _stripes()
    crop = load_image(image, size=(10, 10), background=None, resize="center-crop")
    assert crop.shape == (10, 10) and crop.min() == 1.0
    want = np.asarray(image.crop((20, 0, 40, 20)).resize((10, 10), RESAMPLE)).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(crop, want)
    stretch = load_image(image, size=(10, 10), background=None, resize="stretch")
    want = np.asarray(image.resize((10, 10), RESAMPLE)).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(stretch, want)
    assert stretch[:, 0].max() < 0.1  # the black sides are still there


def test_center_crop_and_stretch_in_colour_keep_the_target_size():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8))
    for mode in ("stretch", "center-crop"):
        out = load_image(rgb, size=(12, 16), channels=3, background=None, resize=mode)
        assert out.shape == (12, 16, 3) and out.dtype == np.float32


@pytest.mark.parametrize("resize", RESIZE_MODES)
def test_an_image_of_the_model_size_is_taken_as_it_is_in_every_mode(resize):
    array = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    out = load_image(Image.fromarray(array), size=(20, 30), background=None, resize=resize)
    np.testing.assert_array_equal(out, array.astype(np.float32) / np.float32(255))


def test_fit_is_still_the_default():
    image = _stripes()
    np.testing.assert_array_equal(load_image(image, size=(10, 10), background=None),
                                  load_image(image, size=(10, 10), background=None, resize="fit"))
    assert not np.array_equal(load_image(image, size=(10, 10), background=None, resize="fit"),
                              load_image(image, size=(10, 10), background=None, resize="stretch"))


def test_unknown_resize_mode_is_refused():
    with pytest.raises(ValueError, match="resize must be one of fit, stretch, center-crop"):
        load_image(_stripes(), resize="crop")
