"""Data in the shapes users keep it: class folders, .npz, IDX folders; load_data, check_fits and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.datasets import CLASS_NAMES, Dataset, check_fits, load_data, load_folders, load_npz
from edgecnn.datasets import fashion_mnist
from edgecnn.errors import DataError, EdgecnnError
from edgecnn.preprocess import load_image

from .conftest import make_idx_dataset
from .helpers import extra_modules, run_python

CLASSES = ("circle", "square", "triangle")


def write_image(path: Path, size: tuple[int, int] = (16, 12), mode: str = "L", seed: int = 0) -> Path:
    """A random image of ``size`` (W, H), saved in the format its suffix names."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def make_tree(root: Path, per_class: int = 4, classes=CLASSES, **kwargs) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", seed=100 * c + i, **kwargs)
    return root


def assert_one_line(info, *needles) -> None:
    text = str(info.value)
    assert "\n" not in text, text
    for needle in needles:
        assert str(needle) in text, (needle, text)


# ------------------------------------------------------------------ class folders


def test_flat_layout_classes_split_and_record(tmp_path):
    root = make_tree(tmp_path / "images", per_class=5)
    (root / "circle" / ".hidden.png").write_bytes(b"junk")  # hidden files and other files are not images of the set
    (root / "circle" / "notes.txt").write_text("hello")
    (root / ".ipynb_checkpoints").mkdir()
    data = load_folders(root)
    assert data.class_names == CLASSES and data.source == f"class folders {root}"
    assert data.x_train.dtype == np.uint8 and data.x_train.shape[1:] == (12, 16, 1) and data.image_shape == (12, 16, 1)
    assert len(data.x_train) + len(data.x_test) == 15 and len(data.x_test) == 3  # round(15 * 0.2)
    assert data.y_train.dtype == np.int64 and sorted(set(data.y_train) | set(data.y_test)) == [0, 1, 2]
    assert data.x_val is None and data.y_val is None
    info = data.info
    assert info["kind"] == "folders" and info["path"] == str(root.resolve())
    assert info["split"] == {"test": "seeded", "test_fraction": 0.2, "seed": 42}
    assert info["counts"] == {"train": 12, "test": 3}
    assert len(info["fingerprint"]) == 64 and json.loads(json.dumps(info)) == info  # JSON as it is, for the manifest


def test_seeded_split_is_reproducible_and_follows_the_seed(tmp_path):
    root = make_tree(tmp_path / "images", per_class=6)
    a, b, c = load_folders(root), load_folders(root), load_folders(root, seed=7, test_fraction=0.5)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert c.info["split"] == {"test": "seeded", "test_fraction": 0.5, "seed": 7} and len(c.x_test) == 9
    assert not np.array_equal(a.x_test, c.x_test[:len(a.x_test)])


def test_split_layout_with_val_folder(tmp_path):
    make_tree(tmp_path / "d" / "train", per_class=3)
    make_tree(tmp_path / "d" / "test", per_class=2)
    make_tree(tmp_path / "d" / "val", per_class=1)
    data = load_folders(tmp_path / "d")
    assert data.info["split"] == {"test": "folder", "val": "folder"}
    assert data.info["counts"] == {"train": 9, "test": 6, "val": 3}
    assert data.y_test.tolist() == [0, 0, 1, 1, 2, 2] and data.y_val.tolist() == [0, 1, 2]
    assert data.x_val.shape == (3, 12, 16, 1)


def test_train_folder_alone_is_split(tmp_path):
    make_tree(tmp_path / "d" / "train", per_class=5)
    data = load_folders(tmp_path / "d")
    assert data.info["split"]["test"] == "seeded" and data.info["counts"] == {"train": 12, "test": 3}


def test_two_images_still_give_both_splits(tmp_path):
    make_tree(tmp_path / "d", per_class=1, classes=("a", "b"))
    data = load_folders(tmp_path / "d")  # round(2 * 0.2) is 0: one image is held out all the same
    assert data.info["counts"] == {"train": 1, "test": 1}


def test_mixed_sizes_and_colours_are_resized_to_the_most_common(tmp_path):
    root = tmp_path / "mixed"
    for i in range(3):
        write_image(root / "a" / f"{i}.png", size=(20, 10), seed=i)
    write_image(root / "a" / "big.jpg", size=(64, 48), mode="RGB", seed=9)
    write_image(root / "b" / "0.png", size=(20, 10), seed=5)
    write_image(root / "b" / "1.bmp", size=(9, 30), seed=6)
    data = load_folders(root, test_fraction=0.4)
    assert data.image_shape == (10, 20, 3)  # one colour image: every image in RGB
    gray = load_folders(root, channels=1, image_size=(8, 8), resize="stretch")
    assert gray.image_shape == (8, 8, 1)
    # exactly the pixels predict sees on the same file with the same preprocessing
    files = sorted((root / "a").iterdir()) + sorted((root / "b").iterdir())
    everything = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    for path in files:
        pixels = np.rint(load_image(path, size=(10, 20), channels=3, invert=False, background=None,
                                    resize="center-crop") * 255).astype(np.uint8)
        matches = [i for i, x in enumerate(everything) if np.array_equal(x, pixels)]
        assert len(matches) == 1 and labels[matches[0]] == (path.parent.name == "b"), path


def test_images_of_the_target_size_are_kept_exactly(tmp_path):
    path = write_image(tmp_path / "d" / "a" / "0.png", size=(16, 12), seed=3)
    write_image(tmp_path / "d" / "b" / "0.png", size=(16, 12), seed=4)
    data = load_folders(tmp_path / "d", test_fraction=0.5)
    everything = np.concatenate([data.x_train, data.x_test])[..., 0]
    assert any(np.array_equal(x, np.asarray(Image.open(path))) for x in everything)


def test_fingerprint_changes_when_a_file_is_added_only(tmp_path):
    root = make_tree(tmp_path / "d", per_class=2)
    first = load_folders(root).info["fingerprint"]
    assert load_folders(root).info["fingerprint"] == first
    write_image(root / "circle" / "new.png", seed=50)
    assert load_folders(root).info["fingerprint"] != first


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    load_folders(make_tree(tmp_path / "d", per_class=2), progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "Reading 6 images" in err


def test_loading_folders_imports_nothing_of_the_train_extra(tmp_path):
    root = make_tree(tmp_path / "d", per_class=2)
    code = ("import json, sys; from edgecnn.datasets import load_data; load_data(sys.argv[1]); "
            "print(json.dumps(sorted(m for m in sys.modules if m.partition('.')[0] in set(sys.argv[2:]))))")
    proc = run_python(code, str(root), *extra_modules("train"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == []


# ------------------------------------------------------------------ bad folders


def test_different_classes_in_train_and_test_name_both_folders(tmp_path):
    make_tree(tmp_path / "d" / "train", per_class=1)
    make_tree(tmp_path / "d" / "test", per_class=1, classes=("circle", "square"))
    with pytest.raises(DataError) as info:
        load_folders(tmp_path / "d")
    assert_one_line(info, tmp_path / "d" / "train", tmp_path / "d" / "test", "circle, square, triangle")


@pytest.mark.parametrize("build, needles", [
    (lambda root: root.mkdir(), ["{root}", "is empty"]),
    (lambda root: write_image(root / "loose.png"), ["{root}", "no class folders"]),
    (lambda root: (make_tree(root, per_class=1), (root / "empty").mkdir()), ["{root}/empty", "holds no images"]),
    (lambda root: (make_tree(root, per_class=1), (root / "zz" / "notes.txt").parent.mkdir(),
                   (root / "zz" / "notes.txt").write_text("x")), ["{root}/zz", "holds no images"]),
    (lambda root: (make_tree(root, per_class=1), (root / "square" / "bad.png").write_bytes(b"\x89PNG broken")),
     ["{root}/square/bad.png"]),
    (lambda root: (make_tree(root, per_class=1), write_image(root / "circle" / "tiny.png", size=(7, 20))),
     ["{root}/circle/tiny.png", "7x20", "8-pixel"]),
    (lambda root: make_tree(root / "test", per_class=1), ["{root}", "no 'train' folder"]),
    (lambda root: (root / "train" / "a").mkdir(parents=True), ["{root}/train/a", "holds no images"]),
    (lambda root: (root / "train").mkdir(parents=True), ["{root}/train", "holds no class folders"]),
    (lambda root: write_image(root / "only" / "0.png"), ["{root} holds 1 image", "needs at least 2"]),
    (lambda root: None, ["{root}", "not found"]),
])
def test_bad_folders_are_one_line_naming_the_place(tmp_path, build, needles):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(EdgecnnError) as info:
        load_data(root)
    assert info.value.exit_code == 2
    assert_one_line(info, *(n.format(root=root) for n in needles))


def test_corrupt_image_is_an_error_not_a_crash(tmp_path):
    root = make_tree(tmp_path / "d", per_class=2)
    good = (root / "circle" / "0.png").read_bytes()
    (root / "circle" / "0.png").write_bytes(good[: len(good) // 2])  # header fine, pixels truncated
    with pytest.raises(EdgecnnError) as info:
        load_folders(root)
    assert_one_line(info, root / "circle" / "0.png")


@pytest.mark.parametrize("kwargs, needle", [
    ({"image_size": (0, 8)}, "image size"), ({"channels": 2}, "channels"), ({"resize": "crop"}, "resize"),
    ({"test_fraction": 1.0}, "test fraction"),
])
def test_bad_options_are_one_line(tmp_path, kwargs, needle):
    with pytest.raises(EdgecnnError, match=needle):
        load_folders(make_tree(tmp_path / "d", per_class=1), **kwargs)


# ------------------------------------------------------------------ .npz


def test_npz_with_everything(tmp_path):
    path = tmp_path / "shapes.npz"
    x = np.zeros((6, 10, 12, 3), np.uint8)
    np.savez(path, x_train=x, y_train=np.array([0, 1, 2, 3, 0, 1], np.uint8), x_test=x[:2], y_test=np.array([3, 2]),
             class_names=np.array(["a", "b", "c", "d"]))
    data = load_npz(path)
    assert data.class_names == ("a", "b", "c", "d") and data.image_shape == (10, 12, 3)
    assert data.y_train.dtype == np.int64 and data.y_test.tolist() == [3, 2] and data.source == str(path)
    assert data.info["kind"] == "npz" and data.info["counts"] == {"train": 6, "test": 2}
    assert data.info["split"] == {"test": "file"} and data.info["path"] == str(path.resolve())
    check_fits(data, (10, 12, 3), 4)


def test_npz_calibration_only_floats(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.full((3, 28, 28), 0.5, np.float32))
    data = load_data(path)
    assert data.y_train is None and data.x_test is None and data.y_test is None and data.class_names is None
    assert data.names(3) == ("0", "1", "2") and data.x_train.dtype == np.float32
    assert data.info["counts"] == {"train": 3} and data.info["split"] == {"test": None}
    check_fits(data, (28, 28, 1), 10)  # gray (N, H, W) fits (H, W, 1)


@pytest.mark.parametrize("arrays, needle", [
    ({"images": np.zeros((3, 8, 8), np.uint8)}, "has no array 'x' or 'x_train' (found: images)"),
    ({"x": np.zeros((3, 8), np.uint8)}, "array 'x': expected images (N, H, W)"),
    ({"x": np.zeros((3, 8, 8, 2), np.uint8)}, "C 1 or 3"),
    ({"x": np.zeros((0, 8, 8), np.uint8)}, "N >= 1"),
    ({"x": np.full((3, 8, 8), 2.0)}, "array 'x': expected float images in [0, 1]"),
    ({"x": np.zeros((3, 8, 8), np.int32)}, "got dtype int32"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "y": np.array([0, 1])}, "array 'y': expected 3 non-negative integer labels"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "y": np.array([0, -1, 1])}, "array 'y'"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "y": np.zeros(3)}, "array 'y'"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "x_test": np.zeros((1, 8, 8), np.uint8)}, "both 'x_test' and 'y_test'"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "x_test": np.zeros((1, 9, 8), np.uint8), "y_test": np.zeros(1, np.uint8)},
     "'x_test' holds (9, 8, 1) images but 'x' holds (8, 8, 1)"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "y": np.array([0, 1, 2]), "class_names": np.array(["a", "b"])},
     "label 2 is outside the 2 class names"),
    ({"x": np.zeros((3, 8, 8), np.uint8), "class_names": np.array([1, 2])},
     "'class_names' must be a 1-D array of strings"),
])
def test_bad_npz_is_one_line_naming_file_and_array(tmp_path, arrays, needle):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as info:
        load_npz(path)
    assert_one_line(info, path, needle)


def test_npz_that_is_not_one(tmp_path):
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(DataError, match="not a .npz file"):
        load_data(tmp_path / "text.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError) as info:
        load_npz(pickled)
    assert_one_line(info, pickled, "allow_pickle=False")
    with pytest.raises(DataError, match="not found"):
        load_npz(tmp_path / "missing.npz")


# ------------------------------------------------------------------ Fashion-MNIST and load_data dispatch


def test_idx_folder_is_fashion_mnist(tmp_path):
    folder = make_idx_dataset(tmp_path / "idx")
    data = load_data(folder)
    assert data.class_names == CLASS_NAMES and data.source == str(folder)
    assert data.x_train.shape == (200, 28, 28) and data.image_shape == (28, 28, 1)
    assert data.info["kind"] == "fashion-mnist" and data.info["counts"] == {"train": 200, "test": 50}
    assert data.info["split"] == {"test": "file"} and len(data.info["fingerprint"]) == 64
    check_fits(data, (28, 28, 1), 10)


def test_none_is_the_fashion_mnist_search(tmp_path, monkeypatch):
    folder = make_idx_dataset(tmp_path / "idx")
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(folder))
    assert load_data().info["path"] == str(folder.resolve())


def test_other_files_are_refused_saying_what_is_accepted(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        load_data(tmp_path / "notes.txt")
    assert_one_line(info, tmp_path / "notes.txt", ".npz", "class folders", "IDX")
    with pytest.raises(DataError) as info:
        load_data(tmp_path / "nowhere")
    assert_one_line(info, tmp_path / "nowhere", "not found")


# ------------------------------------------------------------------ check_fits


def _data(shape=(8, 8, 3), names=("a", "b"), y=(0, 1)) -> Dataset:
    return Dataset(np.zeros((len(y), *shape), np.uint8), np.array(y), None, None, names, source="my data")


def test_check_fits_class_count():
    with pytest.raises(DataError) as info:
        check_fits(_data(names=tuple("abcde"), y=(0, 4)), (8, 8, 3), 4)
    assert_one_line(info, "my data has 5 classes (a, b, c, d, e) but the model outputs 4")
    many = tuple(f"c{i}" for i in range(12))
    with pytest.raises(DataError, match=r"12 classes \(c0, .*c7, \.\.\.\)"):
        check_fits(_data(names=many), (8, 8, 3), 10)


def test_check_fits_labels_of_unnamed_classes():
    check_fits(_data(names=None, y=(0, 3)), (8, 8, 3), 4)
    with pytest.raises(DataError, match="train label 3 is outside the model's 3 classes"):
        check_fits(_data(names=None, y=(0, 3)), (8, 8, 3), 3)


def test_check_fits_image_shape():
    check_fits(_data(), (8, 8, 3), 2)
    with pytest.raises(DataError) as info:
        check_fits(_data(), (8, 8, 1), 2)
    assert_one_line(info, "my data holds 8x8x3 images but the model takes 8x8x1")
    gray = Dataset(np.zeros((2, 8, 8), np.uint8), np.array([0, 1]), None, None, ("a", "b"), source="g")
    check_fits(gray, (8, 8, 1), 2)
    with pytest.raises(DataError, match="8x8x1 images but the model takes 28x28x1"):
        check_fits(gray, (28, 28, 1), 2)


def test_fashion_mnist_does_not_fit_another_model(tmp_path):
    data = load_data(make_idx_dataset(tmp_path / "idx"))
    with pytest.raises(DataError, match=r"has 10 classes \(T-shirt/top, .*\) but the model outputs 4"):
        check_fits(data, (32, 32, 3), 4)


# ------------------------------------------------------------------ the model's side of the bad-input table


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory) -> dict[str, Path]:
    """Keras models that are not image classifiers, and a 3-class one (the class count differs from the data's)."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    folder = tmp_path_factory.mktemp("odd")
    layers = keras.layers
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    two_in = keras.Model([a, b], layers.Dense(3, activation="softmax")(layers.Flatten()(layers.Add()([a, b]))))
    x = keras.Input((8, 8, 1))
    flat = layers.Flatten()(x)
    two_out = keras.Model(x, [layers.Dense(3)(flat), layers.Dense(2)(flat)])
    vector = keras.Sequential([keras.Input((16,)), layers.Dense(3, activation="softmax")])
    three = keras.Sequential([keras.Input((12, 12, 3)), layers.Flatten(), layers.Dense(3, activation="softmax")])
    return {name: _save(model, folder / f"{name}.keras") for name, model in
            {"two-inputs": two_in, "two-outputs": two_out, "not-an-image": vector, "three-classes": three}.items()}


@pytest.mark.parametrize("name, needle", [
    ("two-inputs", "not a single-input, single-output image classifier"),
    ("two-outputs", "not a single-input, single-output image classifier"),
    ("not-an-image", "input (N, H, W, C)"),
])
def test_a_model_that_is_not_an_image_classifier_is_one_line(odd_models, name, needle, tmp_path):
    from .helpers import assert_one_line_error, invoke

    result = invoke("export", "--model", odd_models[name], "--format", "tflite", "--out", tmp_path / "out")
    assert_one_line_error(result, f"{name}.keras", needle, code=2)
    assert not (tmp_path / "out").exists()


def test_data_whose_classes_differ_from_the_models_outputs_is_one_line(odd_models, tmp_path):
    from .helpers import assert_one_line_error, invoke

    data = tmp_path / "data"
    for k, name in enumerate(["a", "b", "c", "d"]):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 12), (60 * k, 10 * i, 0)).save(data / name / f"{i}.png")
    result = invoke("export", "--model", odd_models["three-classes"], "--format", "tflite", "--data", data,
                    "--out", tmp_path / "out")
    assert_one_line_error(result, str(data), "4 classes (a, b, c, d) but the model outputs 3", code=2)
    assert not (tmp_path / "out").exists()
