"""Image -> model input: the one place where pixels become what a model reads.

The runtime, the exporters and verify all go through :func:`to_model_input`
(arrays) and :func:`load_image` (image files), so a model sees the same numbers
whoever feeds it. A model's preprocessing is a small dict (see
:data:`DEFAULT_PREPROCESSING` and :func:`complete_preprocessing`): its input
size, the float range its first layer expects, how an image of another size is
resized, whether images are inverted to the model's background, and whether
it outputs probabilities or logits.

Resize modes: ``fit`` prepares an image the way Fashion-MNIST itself was made
from product photos (trim the background, resize the longest edge, center on
the canvas); ``stretch`` resizes the whole image; ``center-crop`` crops the
largest centred box of the model's aspect ratio, then resizes it. An image that
already has the model's size is taken as it is, so a dataset image saved as PNG
gives back its exact array. ``edgecnn/web/static/preprocess.js`` ports these
algorithms exactly: change both together.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import EdgecnnError, first_line

#: Suffixes picked up when a folder is given (any file Pillow decodes works when named).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: Larger images are refused from their header, before any pixel is decoded.
MAX_PIXELS = 50_000_000
#: A pixel belongs to the object when it differs from the background by more than this (0..255).
TRIM_THRESHOLD = 16
#: Resampling filter of the resize to the model's size.
RESAMPLE = Image.Resampling.LANCZOS

ImageSource = Union[str, os.PathLike, Image.Image]
#: The float range a model's input layer expects ("0-1": pixels / 255).
INPUT_RANGES = ("0-1", "0-255", "-1-1")
#: How an image of another size becomes the model's size.
RESIZE_MODES = ("fit", "stretch", "center-crop")
#: What a model's output row holds (logits get a softmax from consumers).
OUTPUTS = ("probabilities", "logits")
BACKGROUNDS = ("dark", "light", None)
#: The reference model's preprocessing; stored in manifests and inside exported files.
DEFAULT_PREPROCESSING: dict = {"height": 28, "width": 28, "channels": 1, "background": "dark",
                               "input_range": "0-1", "resize": "fit", "output": "probabilities"}
#: What a preprocessing dict written before these keys existed meant.
_OLDER_DEFAULTS = {"background": None, "input_range": "0-1", "resize": "fit", "output": "probabilities"}
#: (scale, offset) taking a [0, 1] pixel to each input range.
_AFFINE = {"0-1": (1.0, 0.0), "0-255": (255.0, 0.0), "-1-1": (2.0, -1.0)}


class ImageError(EdgecnnError):
    """An input image is missing, not an image, corrupt or too large."""


def complete_preprocessing(d: Mapping) -> dict:
    """A preprocessing dict with every key, checked: older manifests and files lack the last three.

    Missing keys get what they meant before they existed (input range 0-1, fit,
    probabilities, no background); an old ``scale`` and keys a newer edgecnn may
    add are dropped (they cannot change what this version does). A bad value is
    a ``ValueError`` naming the key (callers add the file's name).
    """
    out = {**_OLDER_DEFAULTS, **{k: v for k, v in d.items() if k in DEFAULT_PREPROCESSING}}
    for key in ("height", "width", "channels"):
        if key not in out:
            raise ValueError(f"preprocessing has no '{key}'")
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
            raise ValueError(f"preprocessing '{key}' must be a positive integer, got {out[key]!r}")
    allowed = {"channels": (1, 3), "background": BACKGROUNDS, "input_range": INPUT_RANGES,
               "resize": RESIZE_MODES, "output": OUTPUTS}
    for key, values in allowed.items():
        if out[key] not in values:
            raise ValueError(f"preprocessing '{key}' must be one of {', '.join(map(repr, values))}, "
                             f"got {out[key]!r}")
    return out


def range_affine(input_range: str) -> tuple[float, float]:
    """(scale, offset) such that ``pixel01 * scale + offset`` is the model's input, for fast float paths."""
    if input_range not in _AFFINE:
        raise ValueError(f"input_range must be one of {', '.join(INPUT_RANGES)}, got {input_range!r}")
    return _AFFINE[input_range]


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """A folder's image files by suffix, sorted, hidden ones skipped, not recursive (possibly none)."""
    return sorted(f for f in Path(folder).iterdir()
                  if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file())


def image_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The paths, with each folder replaced by its image files (sorted, not recursive).

    Files named directly are kept whatever their suffix (decoding decides); a
    folder with no image file is an :class:`ImageError` naming it.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = folder_images(path)
            if not found:
                raise ImageError(f"{path}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.extend(found)
        else:
            files.append(path)
    return files


def load_image(src: ImageSource, *, size: tuple[int, int] = (28, 28), channels: int = 1,
               invert: str | bool = "auto", background: str | None = "dark", resize: str = "fit",
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One image as float32 pixels in [0, 1] (not the model's range), shape ``size`` (H, W), or (H, W, 3).

    ``background`` is what the model was trained on ("dark": light garment on a
    dark background, as in Fashion-MNIST; None: unknown). ``invert="auto"``
    inverts an image whose border says the opposite (never when unknown);
    ``True``/``False`` force it. ``resize`` is one of :data:`RESIZE_MODES`.
    """
    if invert not in ("auto", True, False):
        raise ValueError(f"invert must be 'auto', True or False, got {invert!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be 'dark', 'light' or None, got {background!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    image = _decode(src, max_pixels)
    try:
        work = _flatten(image, "L" if channels == 1 else "RGB")
    except (ValueError, OSError) as exc:  # an exotic mode Pillow cannot convert
        raise ImageError(f"{_name(src)}: cannot convert {image.mode} pixels ({first_line(exc, 200)})") from None
    gray = np.asarray(work if channels == 1 else work.convert("L"))
    ring = _border_mask(gray.shape)
    if invert == "auto":
        invert = background is not None and (np.median(gray[ring]) > 127) != (background == "light")
    if invert:
        work, gray = ImageOps.invert(work), 255 - gray
    height, width = size
    if work.size != (width, height):
        if resize == "fit":
            work = _fit(work, gray, ring, (height, width))
        else:
            work = (work if resize == "stretch" else work.crop(center_crop_box(work.size, (width, height))))
            work = work.resize((width, height), RESAMPLE)
    return np.asarray(work).astype(np.float32) / np.float32(255.0)


def center_crop_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest centred box of the target's aspect ratio; sizes are (w, h)."""
    w, h = source
    target_w, target_h = target
    if w / h > target_w / target_h:
        new_w = max(1, round(h * target_w / target_h))
        left = (w - new_w) // 2
        return left, 0, left + new_w, h
    new_h = max(1, round(w * target_h / target_w))
    top = (h - new_h) // 2
    return 0, top, w, top + new_h


def image_header(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[tuple[int, int], str]:
    """(width, height) and Pillow mode of an image file, from its header alone (nothing decoded)."""
    path = _existing_file(path)
    with _pillow_errors(path, max_pixels), Image.open(path) as image:
        _check_pixels(path, image.size, max_pixels)
        return image.size, image.mode


def _decode(src: ImageSource, max_pixels: int) -> Image.Image:
    """Open and fully decode the first frame, refusing huge images from their header."""
    if isinstance(src, Image.Image):
        _check_pixels(_name(src), src.size, max_pixels)
        try:
            src.load()
        except Exception as exc:  # Pillow raises many types for broken data
            raise ImageError(f"{_name(src)}: cannot decode the image ({first_line(exc, 200)})") from None
        return src
    path = _existing_file(src)
    with _pillow_errors(path, max_pixels), Image.open(path) as image:
        _check_pixels(path, image.size, max_pixels)
        image.load()  # decode everything now (first frame): a truncated file fails here, not later
        return image


def _existing_file(src: str | os.PathLike) -> Path:
    path = Path(src)
    if not path.exists():
        raise ImageError(f"{path}: not found")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    return path


@contextmanager
def _pillow_errors(path: Path, max_pixels: int) -> Iterator[None]:
    """Turn whatever Pillow raises on a broken file into one :class:`ImageError` line naming it."""
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes), not an image")
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, when the caller raised ours above it
        raise ImageError(f"{path}: over the {max_pixels / 1e6:g}-megapixel limit, refused before decoding "
                         f"({first_line(exc, 200)})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the image ({first_line(exc, 200)})") from None
    except Exception as exc:  # Pillow raises many types for broken data
        raise ImageError(f"{path}: corrupt image ({first_line(exc, 200)})") from None


def _name(src: ImageSource) -> str:
    """What error messages call the image: its path, else the file a PIL image came from."""
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or "image"
    return str(src)


def _check_pixels(name: object, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is over the {max_pixels / 1e6:g}-megapixel limit "
                         "(refused before decoding)")
    if width < 1 or height < 1:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")


def _flatten(image: Image.Image, mode: str) -> Image.Image:
    """8-bit ``mode`` ("L" or "RGB") with any transparency composited on white."""
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit integer or float gray
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode not in ("1", "L", "P", "RGB"):
        image = image.convert("RGB")
    return image if image.mode == mode else image.convert(mode)


def _border_mask(shape: tuple[int, ...]) -> np.ndarray:
    """The outer ring of pixels (about 1/28 of the short side, at least 1 pixel): the background."""
    width = max(1, min(shape[:2]) // 28)
    ring = np.ones(shape[:2], dtype=bool)
    ring[width:-width, width:-width] = False
    return ring


def _fit(work: Image.Image, gray: np.ndarray, ring: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Trim the background, resize the longest edge to fit ``size`` (H, W), center on the background colour."""
    fill = np.median(np.asarray(work)[ring], axis=0)
    mask = np.abs(gray.astype(np.int16) - int(np.median(gray[ring]))) > TRIM_THRESHOLD
    if mask.any():
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        work = work.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    height, width = size
    scale = min(height / work.height, width / work.width)
    new = (max(1, min(width, round(work.width * scale))), max(1, min(height, round(work.height * scale))))
    resized = work.resize(new, RESAMPLE)
    canvas = Image.new(work.mode, (width, height), int(fill) if work.mode == "L" else tuple(int(v) for v in fill))
    canvas.paste(resized, ((width - new[0]) // 2, (height - new[1]) // 2))
    return canvas


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Images as uint8 pixels: datasets hold uint8, or floats in [0, 1] (a .npz)."""
    x = np.asarray(x)
    return x if x.dtype == np.uint8 else np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def to_model_input(x: np.ndarray, input_shape: tuple[int, ...], input_range: str = "0-1") -> np.ndarray:
    """Turn a batch of pixels into float32 model input of the model's shape and range.

    Accepts uint8 in 0..255 or floats in [0, 1], with or without the channel
    axis. uint8 becomes u8/255 ("0-1"), float32(u8) ("0-255") or (u8/255)*2-1
    ("-1-1"); floats become x, x*255 or x*2-1, all computed in float32.
    """
    scale, offset = range_affine(input_range)
    x = np.asarray(x)
    want = tuple(int(d) for d in input_shape)
    if x.shape[1:] == want[:-1] and want[-1] == 1:
        x = x[..., np.newaxis]
    if x.ndim != len(want) + 1 or x.shape[1:] != want or x.shape[0] < 1:
        raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, want))}) "
                         f"or (N, {', '.join(map(str, want[:-1]))}) with N >= 1, got {x.shape}")
    if x.dtype == np.uint8 and input_range == "0-255":  # exact, where u8/255*255 in float32 is not always
        return x.astype(np.float32)
    y = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else _unit_floats(x)
    if scale != 1.0:
        y = y * np.float32(scale)  # a new array: y may be the caller's own
    if offset:
        y += np.float32(offset)
    return y


def check_pixels(x: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``x`` holds pixels: uint8, or finite floats in [0, 1]."""
    if np.asarray(x).dtype != np.uint8:
        _unit_floats(np.asarray(x))


def _unit_floats(x: np.ndarray) -> np.ndarray:
    """Float pixels as float32, refused unless finite and in [0, 1]; other dtypes refused."""
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected uint8 (0..255) or float32 ([0, 1]) images, got dtype {x.dtype}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
        x = x.astype(np.float32, copy=False)
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise ValueError("expected float images in [0, 1] (or uint8 in 0..255), "
                         f"got values in [{x.min():g}, {x.max():g}]")
    return x
