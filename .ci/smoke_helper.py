"""Helpers for .ci/smoke.sh; numpy and Pillow only, so the base install can run them.

  images DIR N                      the first N Fashion-MNIST test images as DIR/NNNNN.png, labels in DIR/labels.json
  predictions LABELS MIN_CORRECT MIN_AGREE A.json B.json
                                    top-1 of two `edgecnn predict --json` outputs against the labels and each other
  manifest DIR FILE...              every FILE exists in DIR and DIR/manifest.json lists it
"""
import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

def read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def images(out: str, count: str) -> None:
    from PIL import Image

    data = Path(os.environ.get("EDGECNN_DATA_DIR") or "/usr/share/datasets/fashion-mnist")
    n = int(count)
    x = read_idx(data / "t10k-images-idx3-ubyte.gz")[:n]
    y = read_idx(data / "t10k-labels-idx1-ubyte.gz")[:n]
    Path(out).mkdir(parents=True, exist_ok=True)
    labels = {}
    for i, (image, label) in enumerate(zip(x, y)):
        path = Path(out, f"{i:05d}.png").resolve()
        Image.fromarray(image).save(path)
        labels[path.as_posix()] = int(label)
    Path(out, "labels.json").write_text(json.dumps(labels))
    print(f"{n} test images from {data} -> {out}")


def predictions(labels_file: str, min_correct: str, min_agree: str, *outputs: str) -> None:
    labels = json.loads(Path(labels_file).read_text())
    tops = []
    for output in outputs:
        report = json.loads(Path(output).read_text())
        top = {Path(item["file"]).resolve().as_posix(): report["classes"].index(item["top_k"][0]["label"])
               for item in report["images"]}
        if set(top) != set(labels):
            sys.exit(f"FAIL: {report['model']} answered for {len(top)} of {len(labels)} images")
        correct = sum(top[f] == labels[f] for f in labels)
        print(f"{report['model']} ({report['backend']}): {correct}/{len(labels)} correct (need {min_correct})")
        if correct < int(min_correct):
            sys.exit(f"FAIL: {report['model']}: {correct}/{len(labels)} correct, expected at least {min_correct}")
        tops.append(top)
    agree = sum(len({top[f] for top in tops}) == 1 for f in labels)
    print(f"models agree on {agree}/{len(labels)} (need {min_agree})")
    if agree < int(min_agree):
        sys.exit(f"FAIL: the models agree on {agree}/{len(labels)}, expected at least {min_agree}")


def manifest(folder: str, *files: str) -> None:
    listed = {entry["file"] for entry in json.loads(Path(folder, "manifest.json").read_text())["exports"].values()}
    missing = [f for f in files if not Path(folder, f).is_file()]
    unlisted = [f for f in files if f not in listed]
    if missing or unlisted:
        sys.exit(f"FAIL: missing files {missing}, not in manifest.json {unlisted}")
    print(f"{len(files)} exports written and listed in manifest.json")


if __name__ == "__main__":
    {"images": images, "predictions": predictions, "manifest": manifest}[sys.argv[1]](*sys.argv[2:])
