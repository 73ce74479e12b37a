"""Mixed precision on a constructed hard case: a model whose float function is intact but whose int8 is ruined.

A tiny CNN is trained here on synthetic images (one noisy template per class,
so its accuracy means something). One output channel of its first convolution
is then multiplied by 100 and the matching input weights of the next
convolution divided by 100: ReLU and max-pooling commute with a positive
scale, so the float model computes the same function, but that channel now
sets the per-tensor int8 scale of the activation and drowns the other channels.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgecnn.datasets import Dataset
from edgecnn.convert.source import ExportSource
from edgecnn.preprocess import DEFAULT_PREPROCESSING
from edgecnn.quantize.mixed import Score

SCALE = 100.0


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 28x28 images: a fixed smooth template per class plus heavy noise; labels 0..9."""
    templates = np.random.default_rng(1234).random((10, 7, 7))
    templates = np.kron(templates, np.ones((4, 4)))  # 28x28 blocks
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = templates[y] * 0.2 + rng.random((n, 28, 28)) * 0.8
    return np.clip(x * 255, 0, 255).astype(np.uint8), y.astype(np.uint8)


def make_hard_case(folder: str | Path) -> tuple[ExportSource, float]:
    """The rescaled model as an export source (its image pool labelled) and the largest float deviation."""
    from edgecnn import tfquiet
    from edgecnn.fileio import sha256_file
    from edgecnn.preprocess import to_model_input

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x, y = synthetic_images(3000, seed=0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="stem"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="head"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    inputs = to_model_input(x, (28, 28, 1))
    with tfquiet.quiet():
        model.fit(inputs, y, epochs=5, batch_size=64, verbose=0)
        before = model.predict(inputs[:500], verbose=0)
    conv1, conv2 = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    with tfquiet.quiet():
        activations = keras.Model(model.inputs, conv1.output).predict(inputs[:500], verbose=0)
    guilty = int(activations.max(axis=(0, 1, 2)).argmax())  # the widest channel: x100 leaves the others least room
    k1, b1 = conv1.get_weights()
    k1[..., guilty] *= SCALE
    b1[guilty] *= SCALE
    conv1.set_weights([k1, b1])
    k2, b2 = conv2.get_weights()
    k2[:, :, guilty, :] /= SCALE
    conv2.set_weights([k2, b2])
    with tfquiet.quiet():
        after = model.predict(inputs[:500], verbose=0)
    path = folder / "hard.keras"
    model.save(path)
    data = Dataset(x, y, None, None, None, "synthetic templates")
    source = ExportSource(model, path, sha256_file(path), (28, 28, 1), 10, data, dict(DEFAULT_PREPROCESSING),
                          calibration_samples=200)
    return source, float(np.abs(after - before).max())


@pytest.fixture(scope="module")
def hard_case(tmp_path_factory):
    return make_hard_case(tmp_path_factory.mktemp("hard"))


@pytest.fixture(scope="module")
def hard_choice(hard_case):
    from edgecnn.quantize import choose_tflite_int8

    source, _ = hard_case
    return choose_tflite_int8(source, 0.3, measure_latency=False)


def test_the_rescaled_model_computes_the_same_float_function(hard_case):
    _, deviation = hard_case
    assert deviation <= 1e-5


def test_plain_int8_loses_and_the_budget_brings_it_back_by_keeping_the_guilty_layer_float(hard_choice):
    choice = hard_choice
    assert choice.float_accuracy > 0.5  # the tiny model learned something
    assert 100 * (choice.float_accuracy - choice.all_int8_accuracy) >= 2.0
    assert choice.met and choice.drop_points <= 0.3
    assert "stem" in choice.float_layers()
    assert {layer.reason for layer in choice.layers if layer.precision == "float32"} == {"error"}
    assert {layer.reason for layer in choice.layers if layer.precision == "int8"} <= {"budget"}


def test_the_diagnosis_ranks_the_guilty_layer_worst(hard_choice):
    from edgecnn.quantize import worst_first

    rows = worst_first(hard_choice.layers)
    assert rows[0].name == "stem"
    assert rows[0].sqnr_db == min(r.sqnr_db for r in rows)


def test_the_choice_is_reproducible(hard_case, hard_choice):
    from edgecnn.quantize import choose_tflite_int8

    again = choose_tflite_int8(hard_case[0], 0.3, measure_latency=False)
    assert again.float_layers() == hard_choice.float_layers()
    assert again.model == hard_choice.model


class FakeCalibrated:
    """Layers whose float versions recover known accuracy, without TensorFlow: the greedy logic alone."""

    def __init__(self, gains: dict[str, float], sqnr: dict[str, float] | None = None) -> None:
        from edgecnn.quantize.tflite_layers import QuantLayer

        self.gains, self.sqnr = gains, sqnr
        self.layers = [QuantLayer(i, name, "CONV_2D", (name,), (4, 4, 1), 10, 14) for i, name in enumerate(gains)]

    def quantize(self, float_layers) -> bytes:
        return ",".join(sorted(layer.name for layer in float_layers)).encode()

    def layer_sqnr(self) -> dict[str, float]:
        """The SQNR given, else one that ranks the layers by their gain (a low SQNR may also do no harm)."""
        return self.sqnr or {name: 30.0 - 10 * gain for name, gain in self.gains.items()}


class FakeEvaluator:
    float_accuracy = 0.90
    measure = "accuracy"
    x = np.zeros(100)

    def __init__(self, calibrated: FakeCalibrated, base: float) -> None:
        self.calibrated, self.base = calibrated, base

    def __call__(self, model: bytes):
        names = [n for n in model.decode().split(",") if n]
        accuracy = min(self.float_accuracy, self.base + sum(self.calibrated.gains[n] for n in names) / 100)
        return Score(accuracy, 0.0, 1.0)


def _latency(ratio: float):
    from edgecnn.quantize.latency import LayerLatency

    return LayerLatency("Conv2D", (4, 4, 1), 10e-6, ratio * 10e-6)


def test_the_lowest_sqnr_layers_go_float_until_the_budget_holds():
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 0.5, "b": 3.0, "c": 1.0})
    choice = choose(calibrated, FakeEvaluator(calibrated, 0.86), 0.5)  # 4 points lost in int8
    assert choice.float_layers() == ["b", "c"] and choice.met  # b has the lowest SQNR, then c
    assert [r.reason for r in choice.layers] == ["budget", "error", "error"]


def test_the_search_tries_about_log2_candidates_for_many_layers():
    """64 layers, two of them guilty: the bisection and the return pass, not one candidate per layer."""
    from edgecnn.quantize.mixed import choose

    gains = {f"l{i:02d}": 0.0 for i in range(64)}
    gains.update(l17=2.0, l40=2.0)  # the two lowest SQNRs; together they recover the 4 points
    calibrated = FakeCalibrated(gains)
    evaluate = CountingEvaluator(calibrated, 0.86)
    choice = choose(calibrated, evaluate, 0.5, diagnose=False)
    assert choice.float_layers() == ["l17", "l40"] and choice.met
    # all-int8, every layer float, 6 bisection steps, 1 return tried (l40 returned alone is the prefix the
    # bisection saw miss), the file
    assert len(evaluate.seen) == 1 + 1 + 6 + 1 + 1


def test_the_return_pass_returns_needless_layers_in_growing_blocks():
    """30 layers go float by SQNR but one alone holds the budget: blocks of 1, 2, 4, 8 and the last 14 return,
    5 candidates for 29 layers, not one each."""
    from edgecnn.quantize.mixed import choose

    names = [f"l{i:02d}" for i in range(40)]
    calibrated = FakeCalibrated({name: 0.0 for name in names} | {"l29": 4.0},
                                sqnr={name: float(i) for i, name in enumerate(names)})
    evaluate = CountingEvaluator(calibrated, 0.86)
    choice = choose(calibrated, evaluate, 0.5, diagnose=False)
    assert choice.float_layers() == ["l29"] and choice.met
    assert len(evaluate.seen) == 1 + 1 + 6 + 5 + 1  # all-int8, all float, bisection, returns, the file


def test_the_return_pass_tries_at_most_its_bound_and_the_heaviest_layers_first():
    """27 layers are each needed (any one returned misses the budget): RETURN_TRIES candidates, one layer each once
    a block is refused, the heaviest first, so the search stays at log2 + a constant candidates on any network."""
    from edgecnn.quantize.mixed import RETURN_TRIES, choose

    names = [f"l{i:02d}" for i in range(40)]
    calibrated = FakeCalibrated({name: 4.0 / 30 if i < 30 else 0.0 for i, name in enumerate(names)},
                                sqnr={name: float(i) for i, name in enumerate(names)})
    calibrated.layers = [layer if layer.index % 2 else replace(layer, weight_count=1000)
                         for layer in calibrated.layers]  # the even ones are heavier: their float costs more
    evaluate = CountingEvaluator(calibrated, 0.86)
    choice = choose(calibrated, evaluate, 0.5, diagnose=False)
    assert choice.float_layers() == names[:27] and choice.met  # 3.6 points back; 26 layers give 3.47: a miss
    # all-int8, all float, the bisection (20, 30, 25, 27, 26 layers), the returns, the file
    assert len(evaluate.seen) == 1 + 1 + 5 + RETURN_TRIES + 1
    tried = evaluate.seen[7:7 + RETURN_TRIES]
    assert [sorted(set(names[:27]) - set(model.decode().split(","))) for model in tried] == \
        [[f"l{i:02d}"] for i in range(0, 2 * RETURN_TRIES, 2)]  # the heaviest first, in graph order


@pytest.mark.parametrize("gain, returned", [(0.3, False), (0.05, True)])
def test_a_return_that_drifts_beyond_noise_from_the_bisection_is_refused(gain, returned):
    """Returning ``a`` keeps the budget either way (0.4 points of 0.5), but a return that costs more than
    AGREEMENT_NOISE of the bisection's end is a chance for the validation images to flatter the file: refused."""
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": gain, "b": 3.6 + 0.3 - gain, "c": 0.0}, sqnr={"a": 1.0, "b": 2.0, "c": 30.0})
    choice = choose(calibrated, FakeEvaluator(calibrated, 0.86), 0.5, diagnose=False)
    assert choice.met and choice.float_layers() == (["b"] if returned else ["a", "b"])


class ErrorEvaluator(FakeEvaluator):
    """The fake, whose output error rises by ``extra`` when ``a`` is int8 (its accuracy does not move)."""

    def __init__(self, calibrated: FakeCalibrated, base: float, extra: float) -> None:
        super().__init__(calibrated, base)
        self.extra = extra

    def __call__(self, model: bytes):
        score = super().__call__(model)
        return score._replace(error=0.01 + (0.0 if b"a" in model.split(b",") else self.extra))


@pytest.mark.parametrize("extra, returned", [(0.001, False), (0.0002, True)])
def test_a_return_that_raises_the_output_error_beyond_its_bound_is_refused(extra, returned):
    """Top-1 counts can stay within noise while the file drifts (EfficientNetB0's ONNX returns): a return that
    raises the mean output error more than RETURN_ERROR_DRIFT (5%) over the bisection's end stays float."""
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 0.0, "b": 4.0}, sqnr={"a": 1.0, "b": 2.0})
    choice = choose(calibrated, ErrorEvaluator(calibrated, 0.86, extra), 0.5, diagnose=False)
    assert choice.met and choice.float_layers() == (["b"] if returned else ["a", "b"])


def test_a_layer_slower_in_int8_stays_float_when_that_costs_no_accuracy():
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 0.0, "b": 0.0})
    slow_first = [_latency(3.0), _latency(0.2)]
    choice = choose(calibrated, FakeEvaluator(calibrated, 0.90), 0.5, slow_first)
    assert [(r.precision, r.reason) for r in choice.layers] == [("float32", "latency"), ("int8", "budget")]
    close_call = [_latency(1.2), _latency(0.2)]  # within the timing margin: not a reason
    assert choose(calibrated, FakeEvaluator(calibrated, 0.90), 0.5, close_call).float_layers() == []


@pytest.mark.parametrize("whole, kept", [([2e-3, 1e-3], True), ([1.0e-3, 0.95e-3], False), ([1e-3, 2e-3], False)])
def test_layers_slower_in_int8_alone_stay_float_only_when_the_whole_model_is_faster(whole, kept):
    """A layer alone does not pay the quantize/dequantize ops its float island adds: the whole candidate decides."""
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 0.0, "b": 0.0})
    timed = []
    evaluate = CountingEvaluator(calibrated, 0.90)
    choice = choose(calibrated, evaluate, 0.5, [_latency(3.0), _latency(0.2)],
                    time_models=lambda models: timed.extend(models) or whole, diagnose=False)
    assert timed == [b"", b"a"]  # all-int8 against the candidate with the slow layer float
    assert (b"a" in evaluate.seen) is kept  # timed first: not faster whole, so its accuracy is never evaluated
    assert choice.float_layers() == (["a"] if kept else [])
    assert [r.reason for r in choice.layers] == (["latency", "budget"] if kept else ["budget", "budget"])
    assert choice.latency.kept_float is kept and choice.latency.layers == 1
    assert ("kept float" if kept else "returned to int8") in choice.note()
    assert choice.manifest_fields("v")["mixed_precision"]["latency"]["kept_float"] is kept


class CountingEvaluator(FakeEvaluator):
    """The fake, remembering every candidate it was asked to evaluate."""

    def __init__(self, calibrated: FakeCalibrated, base: float) -> None:
        super().__init__(calibrated, base)
        self.seen: list[bytes] = []

    def __call__(self, model: bytes):
        self.seen.append(model)
        return super().__call__(model)


@pytest.mark.parametrize("base", [0.90, 0.86])
def test_without_diagnosis_no_layer_is_measured_alone_and_the_choice_is_the_same(base):
    """export (diagnose=False) makes the same choice as explain, without its one candidate a layer."""
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 0.5, "b": 3.0, "c": 1.0})
    full, fast = CountingEvaluator(calibrated, base), CountingEvaluator(calibrated, base)
    diagnosed, chosen = choose(calibrated, full, 0.5), choose(calibrated, fast, 0.5, diagnose=False)
    assert chosen.float_layers() == diagnosed.float_layers() and chosen.model == diagnosed.model
    assert all(r.harm_points is not None for r in diagnosed.layers)
    assert full.seen == [fast.seen[0], b"a", b"b", b"c", *fast.seen[1:]]
    assert [r.harm_points for r in chosen.layers] == [None] * 3
    assert chosen.manifest_fields("v")["layers"][0]["harm_points"] is None
    if base == 0.90:  # all-int8 within the budget: no search
        assert fast.seen == [b"", b""]
    else:  # all-int8, every layer float, bisection (b alone misses; b and c hold), b back to int8 (c returned
        # alone is b alone, seen to miss), the file
        assert fast.seen == [b"", b"a,b,c", b"b", b"b,c", b"c", b"b,c"]


def test_a_budget_no_mix_meets_gives_the_best_mix_and_says_so():
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated({"a": 1.0, "b": 0.5, "c": 0.0})
    evaluate = CountingEvaluator(calibrated, 0.80)
    choice = choose(calibrated, evaluate, 0.5)  # all float recovers only 1.5 of 10 points
    assert not choice.met and choice.float_layers() == ["a", "b", "c"]
    assert choice.drop_points == pytest.approx(8.5)
    # all-int8, each layer alone, every layer float, the file: no greedy step once every layer float falls short
    assert evaluate.seen == [b"", b"a", b"b", b"c", b"a,b,c", b"a,b,c"]


def test_export_with_a_budget_writes_the_mix_and_the_manifest_says_why(hard_case, tmp_path):
    """The whole export path: validation split from a labelled .npz, the mix written, parsed back, predicted."""
    from edgecnn.bundle import load_manifest
    from edgecnn.export import export_model
    from edgecnn.fileio import sha256_file
    from edgecnn.model_card import read_tflite_card
    from edgecnn.runtime import Predictor

    source, _ = hard_case
    x, y = source.data.x_train, source.data.y_train
    x_test, y_test = synthetic_images(300, seed=5)
    npz = tmp_path / "images.npz"
    np.savez(npz, x=x, y=y, x_test=x_test, y_test=y_test)
    result = export_model(source.model_path, ["tflite-int8"], tmp_path / "out", calibration_samples=200,
                          data=npz, max_accuracy_drop=0.3)
    assert not result.missed_budgets
    record = load_manifest(tmp_path / "out").exports["tflite-int8"]
    assert record.mixed_precision.met and record.mixed_precision.max_accuracy_drop_points == 0.3
    assert record.mixed_precision.validation_images == 2000  # of 3000, none of the 200 calibration images
    by_name = {layer.name: layer for layer in record.layers}
    assert by_name["stem"].precision == "float32" and by_name["stem"].reason in ("error", "latency")
    path = tmp_path / "out" / "model_int8.tflite"
    assert read_tflite_card(path)["precision"] == "int8" and sha256_file(path) == record.sha256  # card in, then hashed
    predictor = Predictor.load(path)
    assert predictor.precision == "int8"
    keras_top1 = source.model.predict(x_test[:100].astype(np.float32)[..., None] / 255, verbose=0).argmax(1)
    assert (predictor.predict(x_test[:100]).argmax(1) == keras_top1).mean() >= 0.95



def test_export_without_latency_chooses_by_accuracy_alone(hard_case, tmp_path):
    """`export --no-latency`: no layer is timed or kept float for speed, and exporting again makes the same choice.

    The TFLite file is byte-identical; the ONNX one differs only in the names tf2onnx numbers for the nodes it
    adds (its counter runs on between conversions and through set iterations), so its layers are compared."""
    import json

    from .helpers import invoke

    source, _ = hard_case
    x_test, y_test = synthetic_images(300, seed=5)
    npz = tmp_path / "images.npz"
    np.savez(npz, x=source.data.x_train, y=source.data.y_train, x_test=x_test, y_test=y_test)
    runs = []
    for out in ("a", "b"):
        result = invoke("export", "--model", source.model_path, "--format", "tflite-int8", "--format", "onnx-int8",
                        "--data", npz, "--calibration-samples", "200", "--max-accuracy-drop", "0.3", "--no-latency",
                        "--out", tmp_path / out)
        assert result.returncode == 0, result.stderr
        exports = json.loads((tmp_path / out / "manifest.json").read_text())["exports"]
        for name in ("tflite-int8", "onnx-int8"):
            layers = exports[name]["layers"]
            assert all(layer["float32_s"] is None and layer["int8_s"] is None for layer in layers), name
            assert {layer["reason"] for layer in layers} <= {"error", "budget"}, name
            assert [layer["precision"] for layer in layers if layer["name"] == "stem"] == ["float32"], name
        runs.append((exports["tflite-int8"]["sha256"], exports["tflite-int8"]["layers"], exports["onnx-int8"]["layers"]))
    assert runs[0] == runs[1]

def test_explain_prints_the_table_worst_first_and_writes_json(hard_case, tmp_path):
    import json

    from click.testing import CliRunner

    from edgecnn.cli import cli

    source, _ = hard_case
    npz = tmp_path / "images.npz"
    np.savez(npz, x=source.data.x_train, y=source.data.y_train)
    args = ["explain", "--model", str(source.model_path), "--format", "tflite-int8", "--calibration-data", str(npz),
            "--calibration-samples", "200", "--no-latency", "--max-accuracy-drop", "0.3", "--json", str(tmp_path / "explain.json")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "tflite-int8" and lines[1].split()[:3] == ["layer", "op", "input"]
    assert lines[3].split()[0] == "stem"
    assert "within the budget of 0.3" in lines[-1]
    saved = json.loads((tmp_path / "explain.json").read_text())["exports"]["tflite-int8"]
    assert saved["layers"][0]["name"] == "stem" and saved["met"] and saved["drop_points"] <= 0.3
    assert {"sqnr_db", "harm_points", "float32_s", "int8_s", "weight_bytes_int8", "precision", "reason"} <= set(
        saved["layers"][0])
    assert 0.9 < saved["agreement"] <= 1 and saved["measure"] == "accuracy"


def test_without_labels_the_budget_is_agreement_with_float(hard_case, tmp_path):
    """Unlabelled images still protect the int8 file: the budget is in points of top-1 disagreement with the
    float model, and the manifest, explain and the missed-budget line say which measure was used."""
    import json

    from click.testing import CliRunner

    from edgecnn.cli import cli

    source, _ = hard_case
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=source.data.x_train)
    base = ["--model", str(source.model_path), "--calibration-data", str(unlabelled), "--calibration-samples", "200",
            "--no-latency"]
    result = CliRunner().invoke(cli, ["explain", *base, "--format", "tflite-int8", "--max-accuracy-drop", "0.3"])
    assert result.exit_code == 0, result.output
    assert "validation agreement with float (" in result.stdout and "unlabelled images)" in result.stdout
    result = CliRunner().invoke(cli, ["export", *base, "--out", str(tmp_path / "bundle"), "--format", "tflite-int8",
                                      "--format", "onnx-int8", "--max-accuracy-drop", "0.3"])
    assert result.exit_code == 0, result.output
    exports = json.loads((tmp_path / "bundle" / "manifest.json").read_text())["exports"]
    for name in ("tflite-int8", "onnx-int8"):
        mixed = exports[name]["mixed_precision"]
        assert mixed["measure"] == "agreement" and "(unlabelled)" in mixed["validation_source"], name
        assert mixed["float_accuracy"] == 1.0 and mixed["all_int8_accuracy"] < 0.98, name  # all int8 would lose
        assert mixed["met"] and mixed["accuracy"] >= 0.997 and mixed["agreement"] == mixed["accuracy"], name
        assert "stem" in [layer["name"] for layer in exports[name]["layers"] if layer["precision"] == "float32"], name


def test_the_quantize_package_imports_on_its_own_without_tensorflow():
    """Imported before edgecnn.export (no import cycle), and TensorFlow only when a model is measured."""
    import subprocess
    import sys

    code = "import sys, edgecnn.explain; assert 'tensorflow' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_agreement_target_is_verifys_gate_plus_a_margin_for_the_validation_sample():
    """A mix at the gate on validation misses it on the test set about half the time: export aims above it."""
    from edgecnn.quantize import AGREEMENT_MARGIN_SE, agreement_target, int8_agreement_gate

    gate = int8_agreement_gate()
    sure = np.tile([[0.9, 0.1]], (1600, 1))  # confident images: the ones the gate counts
    ties = np.tile([[0.52, 0.48]], (4000, 1))
    expected = gate + AGREEMENT_MARGIN_SE * np.sqrt(gate * (1 - gate) / 1600)
    assert agreement_target(sure) == pytest.approx(expected) and 0.005 < expected - gate < 0.007
    assert agreement_target(np.concatenate([sure, ties])) == pytest.approx(expected)  # near ties not counted
    assert agreement_target(np.tile(sure, (4, 1))) < expected  # more images, a smaller margin
    assert agreement_target(ties) == gate  # nothing to count: the gate itself


def test_a_missed_agreement_target_names_the_gate_and_the_margin():
    from edgecnn.quantize.mixed import MixedChoice

    choice = MixedChoice(b"", [], 0.9, 0.9, 0.9, 0.5, 2000, [], agreement=0.987, min_agreement=0.9911,
                         agreement_gate=0.985)
    assert not choice.met
    assert choice.misses() == ["validation agreement with float 98.70% < 99.11% (verify's int8 gate 98.5% + 0.61 "
                               "points for the validation sample) (near ties not counted)"]
    fields = choice.manifest_fields("v")["mixed_precision"]
    assert fields["min_agreement"] == 0.9911 and fields["agreement_gate"] == 0.985
