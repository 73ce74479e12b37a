"""Where ARM and x86 disagree: each bundle's exports run on emulated ARM cores, compared with this machine.

Usage: python bench/arm64.py [--cpu cortex-a53,cortex-a76,max] [--case NAME ...] [--float-images N]

``edgecnn verify --arch arm64`` on each bundle, in place: the committed
reference bundle (its verify.json and manifest then carry the ARM rows the
README figures show) and the bundles bench/architectures.py writes under
/tmp/edgecnn-architectures when they are there. The int8-family files run on
the whole test set; the float files, whose ARM and x86 results differ by
rounding alone, on ``--float-images`` images spread over it (float arithmetic
is the slowest part of the emulation). The rows of the cores run replace
theirs in ``bench/arm64.json``; the other cores' rows stay, each with the
QEMU that computed it. Writes that file and the block between
``<!-- arm64:start -->`` and ``<!-- arm64:end -->`` in bench/RESULTS.md, with
the machine. Needs root (see `edgecnn arm64 setup`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgecnn.bundle.manifest import load_manifest  # noqa: E402
from edgecnn.fileio import write_json  # noqa: E402
from edgecnn.render.arm64 import END, START, render  # noqa: E402
from edgecnn.render.readme import replace_block  # noqa: E402
from edgecnn.versions import machine, utc_now  # noqa: E402

ARCHITECTURES = Path("/tmp/edgecnn-architectures")
CASES = {"reference CNN": HERE.parent / "models" / "fashion-cnn",
         "MobileNetV3Small": ARCHITECTURES / "mobilenet-v3-small" / "bundle",
         "MobileNetV2 in a wrapper": ARCHITECTURES / "nested-wrapper" / "bundle"}
#: Precisions whose kernels differ between x86 and ARM in integer arithmetic: the whole test set.
INT8_FAMILY = ("int8", "dynamic", "int16x8")


def run_case(name: str, bundle: Path, cpus: list[str], float_images: int) -> list[dict]:
    from edgecnn.verify import verify

    rows = []
    exports = load_manifest(bundle).exports
    for family, images in ((True, None), (False, float_images)):
        files = [bundle / e.file for e in exports.values() if (e.precision in INT8_FAMILY) == family]
        if not files:
            continue
        print(f"{name}: {len(files)} files on {', '.join(cpus)}, {images or 'all'} images", flush=True)
        report = verify(files, arch="arm64", cpus=cpus, images=images, say=print)
        rows += [r.to_dict() for r in report.bundles[0].arm]
    return rows


def kept_rows(path: Path, cpus: list[str]) -> dict[str, list[dict]]:
    """The rows ``path`` holds on cores other than ``cpus``, by case name."""
    if not path.is_file():
        return {}
    return {case["name"]: [row for row in case["rows"] if row["cpu"] not in cpus]
            for case in json.loads(path.read_text(encoding="utf-8"))["cases"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="cortex-a53,cortex-a76,max")
    parser.add_argument("--case", action="append", choices=list(CASES), default=None)
    parser.add_argument("--float-images", type=int, default=2000)
    args = parser.parse_args()
    cpus = [c for c in args.cpu.split(",") if c]
    cases, kept = [], kept_rows(HERE / "arm64.json", cpus)
    for name in args.case or list(CASES):
        if not (CASES[name] / "manifest.json").is_file():
            print(f"{name}: no bundle at {CASES[name]} (run bench/architectures.py): left out", flush=True)
            continue
        rows = kept.get(name, []) + run_case(name, CASES[name], cpus, args.float_images)
        cases.append({"name": name, "bundle": str(CASES[name]), "rows": rows})
    record = {"created": utc_now(), "machine": machine(), "cases": cases}
    write_json(HERE / "arm64.json", record)
    replace_block(HERE / "RESULTS.md", START, END, lambda: render(record), "the arm64 table")
    print(render(record))


if __name__ == "__main__":
    main()
