"""Class-folder image trees: the layout ``keras.utils.image_dataset_from_directory`` reads.

``PATH/<class>/<image>``, or ``PATH/train/<class>/<image>`` with ``PATH/test/...``
(and an optional ``PATH/val/...``). Class names are the sorted sub-folder names,
as in Keras. Images are decoded with :func:`edgecnn.preprocess.load_image`, the
very function ``predict`` uses, and kept as uint8: predicting on a dataset file
later sees exactly the pixels trained or verified on.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, EdgecnnError
from ..preprocess import IMAGE_SUFFIXES, RESIZE_MODES, folder_images, image_header, load_image
from .dataset import Dataset, fingerprint
from .splits import split_indices

#: Split sub-folders, in the order they are read.
SPLITS = ("train", "test", "val")
#: Images with a side below this are refused: too small to say anything at any model size.
MIN_SIDE = 8
#: Pillow modes without colour: a dataset made only of these loads with one channel.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "F", "I"})


def load_folders(path: str | os.PathLike, *, image_size: tuple[int, int] | None = None,
                 channels: int | None = None, resize: str = "center-crop", seed: int = 42,
                 test_fraction: float = 0.2, progress: bool = False) -> Dataset:
    """Load a class-folder tree as uint8 images (N, H, W, C) with int64 labels.

    ``image_size`` (H, W) defaults to the most common size among the images and
    ``channels`` to 1 when every image is gray, else 3; images of another size
    are resized with ``resize``. Without a ``test`` folder, ``test_fraction`` of
    the images (at least one, never all) is held out by a shuffle seeded with
    ``seed``, recorded in ``info["split"]``.
    """
    _check_options(image_size, channels, resize, test_fraction)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"data folder {root} not found" if not root.exists() else f"{root} is not a folder")
    folders = _split_folders(root)
    trees = {split: _class_files(folder) for split, folder in folders.items()}
    names = tuple(trees["train"])
    for split, tree in trees.items():
        if tuple(tree) != names:
            raise DataError(f"class folders differ: {folders['train']} has {', '.join(names)} "
                            f"but {folders[split]} has {', '.join(tree)}")
    files = [f for tree in trees.values() for group in tree.values() for f in group]
    headers = [_header(f) for f in files]
    if image_size is None:
        width, height = Counter(size for size, _ in headers).most_common(1)[0][0]
        image_size = (height, width)
    if channels is None:
        channels = 1 if all(mode in GRAY_MODES or mode.startswith("I;16") for _, mode in headers) else 3

    listed = {s: _labelled(tree) for s, tree in trees.items()}
    split = {"test": "folder"} if "test" in listed else _hold_out(listed, folders["train"], test_fraction, seed)
    if "val" in listed:
        split["val"] = "folder"

    arrays = {}
    count = sum(len(group) for group, _ in listed.values())
    bar = _progress(count, f"Reading {count} images from {root}") if progress else nullcontext()
    with bar as tick:
        for s, (group, labels) in listed.items():
            arrays[f"x_{s}"] = _decode(group, image_size, channels, resize, tick)
            arrays[f"y_{s}"] = labels
    info = {"kind": "folders", "path": str(root.resolve()), "split": split,
            "counts": {s: len(group) for s, (group, _) in listed.items()}, "fingerprint": fingerprint(root, files)}
    return Dataset(**arrays, class_names=names, source=f"class folders {root}", info=info)


def _hold_out(listed: dict[str, tuple[list[Path], np.ndarray]], folder: Path, fraction: float,
              seed: int) -> dict:
    """Move a seeded ``fraction`` of the training files to a test split (each side non-empty); its record."""
    files, labels = listed["train"]
    if len(files) < 2:
        raise DataError(f"{folder} holds 1 image: a test set needs at least 2 (or a test folder beside train)")
    kept, held = (np.sort(i) for i in split_indices(len(files), fraction, seed, both_non_empty=True))
    listed["train"] = [files[i] for i in kept], labels[kept]
    listed["test"] = [files[i] for i in held], labels[held]
    return {"test": "seeded", "test_fraction": fraction, "seed": seed}


def _check_options(image_size: tuple[int, int] | None, channels: int | None, resize: str,
                   test_fraction: float) -> None:
    if image_size is not None and (len(image_size) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in image_size)):
        raise EdgecnnError(f"image size must be two positive integers (height, width), got {image_size!r}")
    if channels not in (None, 1, 3):
        raise EdgecnnError(f"channels must be 1 or 3, got {channels!r}")
    if resize not in RESIZE_MODES:
        raise EdgecnnError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if not 0 < test_fraction < 1:
        raise EdgecnnError(f"test fraction must be between 0 and 1, got {test_fraction!r}")


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _split_folders(root: Path) -> dict[str, Path]:
    """{"train": ..., "test": ..., "val": ...} of the split layout, else {"train": root} (class folders at the top)."""
    names = {d.name for d in _subfolders(root)}
    if not names:
        loose = folder_images(root)
        if loose:
            raise DataError(f"data folder {root} holds {len(loose)} images but no class folders: "
                            f"expected {root}/<class>/<image> or {root}/train/<class>/<image>")
        raise DataError(f"data folder {root} is empty: expected {root}/<class>/<image> "
                        f"or {root}/train/<class>/<image>")
    if names <= set(SPLITS):
        if "train" not in names:
            raise DataError(f"data folder {root} has {', '.join(sorted(names))} but no 'train' folder")
        return {s: root / s for s in SPLITS if s in names}
    return {"train": root}


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, classes in sorted order (as Keras), each holding at least one image."""
    classes = _subfolders(folder)
    if not classes:
        raise DataError(f"{folder} holds no class folders: expected {folder}/<class>/<image>")
    tree = {}
    for d in classes:
        tree[d.name] = folder_images(d)
        if not tree[d.name]:
            raise DataError(f"class folder {d} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return tree


def _labelled(tree: dict[str, list[Path]]) -> tuple[list[Path], np.ndarray]:
    """All files of a split in class order, and their int64 labels."""
    files = [f for group in tree.values() for f in group]
    labels = np.repeat(np.arange(len(tree), dtype=np.int64), [len(group) for group in tree.values()])
    return files, labels


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """Size and mode from the header; an image too small to classify is refused here, naming it."""
    (width, height), mode = image_header(path)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise DataError(f"{path}: {width}x{height} pixels, smaller than the {MIN_SIDE}-pixel minimum side")
    return (width, height), mode


def _decode(files: list[Path], image_size: tuple[int, int], channels: int, resize: str,
            tick: Any) -> np.ndarray:
    """The files as uint8 (N, H, W, C), decoded exactly as ``predict`` decodes them (no inversion)."""
    height, width = int(image_size[0]), int(image_size[1])
    out = np.empty((len(files), height, width, channels), dtype=np.uint8)
    for i, f in enumerate(files):
        pixels = load_image(f, size=(height, width), channels=channels, invert=False, background=None, resize=resize)
        out[i] = np.rint(pixels * np.float32(255.0)).reshape(height, width, channels)
        if tick is not None:
            tick.update(1)
    return out


def _progress(total: int, label: str):
    """A click progress bar on stderr (a large folder takes seconds to decode)."""
    import click

    return click.progressbar(length=total, label=label, file=sys.stderr)
