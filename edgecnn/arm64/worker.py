"""Inside the emulated arm64 root: run one staged model file on the staged images (see :mod:`.run`).

It imports only edgecnn's deploy runtime, as on a device. A model file's own
error (:class:`EdgecnnError`) is a result, written to result.json; anything
else is a bug and ends the process with its traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import EdgecnnError, first_line
from ..fileio import write_json
from ..runtime import Predictor
from ..versions import package_versions
from .cpus import hwcap_flags


def main(job: Path) -> None:
    spec = json.loads((job / "job.json").read_text(encoding="utf-8"))
    record = {"flags": hwcap_flags(), "versions": package_versions(("numpy", "onnxruntime", "ai-edge-litert"))}
    x = np.load(job / "x.npy", mmap_mode="r", allow_pickle=False)
    try:
        predictor = Predictor.load(job / spec["file"], threads=1)
        chunks = []
        for start in range(0, len(x), spec["batch"]):
            chunks.append(np.asarray(predictor.predict(np.asarray(x[start:start + spec["batch"]])), np.float32))
            print(f"images {len(chunks[-1])}", flush=True)
    except EdgecnnError as exc:
        write_json(job / "result.json", {**record, "error": first_line(exc)})
        return
    np.save(job / "probs.npy", np.concatenate(chunks))
    write_json(job / "result.json", {**record, "backend": predictor.backend, "precision": predictor.precision})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
