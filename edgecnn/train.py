"""The reference training recipe and its artifacts.

Adam, sparse categorical cross-entropy, a seeded 80/20 split, up to 20 epochs,
the best model checkpointed on validation loss and early stopping with patience
2 restoring the best weights: the textbook run, made reproducible (seeded
everything, op determinism) and safe (atomic checkpoint, Ctrl-C keeps it).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import tfquiet
from .bundle.files import HISTORY_FILE, METRICS_FILE, MODEL_FILE
from .datasets import load_data, train_val_split
from .preprocess import to_model_input
from .errors import EdgecnnError
from .fileio import atomic_path, ensure_writable_dir, write_json, write_text
from .model import build_model, compile_model, format_layer_table, layer_table, save_model, write_architecture
from .versions import machine

MIN_LIMIT = 10
#: The reference CNN pools twice (2x2) after 3x3 convolutions: smaller images leave nothing to classify.
MIN_IMAGE_SIDE = 8
MAX_COUNT = 2**31 - 1
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    out: Path = Path("models/fashion-cnn")
    epochs: int = 20
    batch_size: int = 32
    patience: int = 2
    seed: int = 42
    #: Class folders, a .npz or the Fashion-MNIST IDX folder (None: Fashion-MNIST from the usual places).
    data: Path | None = None
    limit: int | None = None
    #: (height, width) images are resized to, and 1 or 3 channels (None: read from the data).
    image_size: tuple[int, int] | None = None
    channels: int | None = None


@dataclass
class TrainResult:
    model_path: Path
    metrics: dict
    history: dict
    artifacts: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def validate_config(cfg: TrainConfig) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            raise EdgecnnError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.patience < 0:
        raise EdgecnnError(f"--patience must be 0 or more, got {cfg.patience}")
    if not 0 <= cfg.seed <= MAX_SEED:  # numpy and TF take unsigned 32-bit seeds
        raise EdgecnnError(f"--seed must be between 0 and {MAX_SEED}, got {cfg.seed}")
    for name in ("epochs", "batch_size", "patience"):
        if getattr(cfg, name) > MAX_COUNT:  # TF overflows a C long beyond it
            raise EdgecnnError(f"--{name.replace('_', '-')} must be at most {MAX_COUNT}, got {getattr(cfg, name)}")
    if cfg.image_size is not None and (len(cfg.image_size) != 2 or min(cfg.image_size) < MIN_IMAGE_SIDE):
        raise EdgecnnError(f"--image-size must be HxW with both sides at least {MIN_IMAGE_SIDE}, got {cfg.image_size}")
    if cfg.channels not in (None, 1, 3):
        raise EdgecnnError(f"--channels must be 1 or 3, got {cfg.channels}")
    if cfg.limit is not None and cfg.limit < MIN_LIMIT:
        raise EdgecnnError(f"--limit must be at least {MIN_LIMIT} (some images go to validation), got {cfg.limit}")


def seed_everything(seed: int) -> None:
    """Same seed, same machine, same weights: Python, numpy and TF seeds plus op determinism."""
    tf = tfquiet.tensorflow()
    keras = tfquiet.keras()
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _best_checkpoint(path: Path):
    """A callback that saves the best model (lowest val_loss) atomically, without optimizer state."""
    keras = tfquiet.keras()

    class BestCheckpoint(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = np.inf
            self.best_epoch = 0

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("val_loss", np.inf)
            if loss < self.best:
                self.best, self.best_epoch = float(loss), epoch + 1
                save_model(self.model, path)

    return BestCheckpoint()


def train(cfg: TrainConfig) -> TrainResult:
    """Train the reference CNN, sized to the data, and write model, history, metrics, plots and summary to ``cfg.out``.

    The input shape comes from the images (or ``image_size``/``channels``), the
    output from the classes; the recipe is the same for every dataset.
    """
    validate_config(cfg)
    out = ensure_writable_dir(cfg.out)
    data = load_data(cfg.data, image_size=cfg.image_size, channels=cfg.channels, progress=True)
    if data.y_train is None:
        raise EdgecnnError(f"{data.source} has no training labels ('y' or 'y_train'): cannot train on it")
    if data.x_test is None:
        raise EdgecnnError(f"{data.source} has no test split ('x_test' and 'y_test'): cannot measure the model")
    classes = len(data.class_names) if data.class_names is not None else int(data.y_train.max()) + 1
    input_shape, names = data.image_shape, data.names(classes)
    if min(input_shape[:2]) < MIN_IMAGE_SIDE:
        raise EdgecnnError(f"{data.source} holds {input_shape[0]}x{input_shape[1]} images: the reference CNN needs "
                           f"at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} (--image-size)")
    x_all, y_all = data.x_train, data.y_train
    if cfg.limit is not None:
        if cfg.limit > len(x_all):
            raise EdgecnnError(f"--limit {cfg.limit} is larger than the {len(x_all)} training images in {data.source}")
        x_all, y_all = x_all[:cfg.limit], y_all[:cfg.limit]
    if data.x_val is not None:  # the data's own validation folder
        x_train, y_train, x_val, y_val = x_all, y_all, data.x_val, data.y_val
    else:
        x_train, y_train, x_val, y_val = train_val_split(x_all, y_all, seed=cfg.seed)

    seed_everything(cfg.seed)
    keras = tfquiet.keras()
    model = build_model(input_shape, classes)
    compile_model(model)
    model_path = out / MODEL_FILE
    checkpoint = _best_checkpoint(model_path)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True)

    started = time.perf_counter()
    interrupted = False
    try:
        with tfquiet.quiet():  # only fd 2: Keras's progress bar stays on stdout
            history = model.fit(
                to_model_input(x_train, input_shape), y_train, validation_data=(to_model_input(x_val, input_shape), y_val),
                epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True,
                callbacks=[checkpoint, stopper], verbose=1 if sys.stdout.isatty() else 2,
            ).history
    except KeyboardInterrupt:
        interrupted = True
    wall = time.perf_counter() - started
    if interrupted:
        kept = f"; the best checkpoint so far is kept in {model_path}" if checkpoint.best_epoch else ""
        raise EdgecnnError(f"training interrupted{kept}", exit_code=130)

    history = {key: [float(v) for v in values] for key, values in history.items()}
    save_model(model, model_path)  # the restored best weights (same as the checkpoint)
    with tfquiet.quiet():
        test_loss, test_acc = model.evaluate(to_model_input(data.x_test, input_shape), data.y_test, batch_size=256, verbose=0)
    epochs_run = len(history.get("loss", []))
    best_epoch = checkpoint.best_epoch
    metrics = {
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "val_accuracy": float(history["val_accuracy"][best_epoch - 1]),
        "val_loss": float(history["val_loss"][best_epoch - 1]),
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "early_stopped": epochs_run < cfg.epochs,
        "wall_time_s": round(wall, 2),
        "seconds_per_epoch": round(wall / max(epochs_run, 1), 2),
        "params": int(model.count_params()),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "patience": cfg.patience,
        "limit": cfg.limit,
        "train_images": len(x_train),
        "val_images": len(x_val),
        "test_images": len(data.x_test),
        "data_source": data.source,
        "data": data.info,
        "input_shape": list(input_shape),
        "class_names": list(names),
        "machine": machine(),
    }
    artifacts = [model_path, write_json(out / HISTORY_FILE, history), write_json(out / METRICS_FILE, metrics)]
    artifacts += write_training_plot(history, out / "training.png", best_epoch)
    summary, notes = write_summary(model, out)
    artifacts += summary
    return TrainResult(model_path, metrics, history, artifacts, notes)


def write_summary(model, out: Path) -> tuple[list[Path], list[str]]:
    """The layer table as text and the architecture diagram, when Graphviz is there."""
    written = [write_text(out / "summary.txt", format_layer_table(layer_table(model)) + "\n")]
    diagram = write_architecture(model, out / "architecture.png")
    if diagram is None:
        return written, ["Graphviz (dot) or pydot not found: skipped architecture.png (apt-get install graphviz)"]
    return written + [diagram], []


def write_training_plot(history: dict, path: Path, best_epoch: int | None = None) -> list[Path]:
    """Train/validation loss and accuracy per epoch, the early-stopping point marked."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label=f"train {metric}")
        ax.plot(epochs, history[f"val_{metric}"], "o-", label=f"validation {metric}")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return [path]
