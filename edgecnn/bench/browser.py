"""Browser rows for `edgecnn bench --browser`: each ONNX export's web app timed in headless Chromium.

The page is the one `edgecnn web` writes (onnxruntime-web, wasm backend, one
thread), served on 127.0.0.1; the timed call is its batch-1 ``session.run``, the
browser's counterpart of the native ``raw`` rows.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ..bundle.targets import manifest_of
from ..errors import EdgecnnError
from .targets import BenchTarget
from .timing import summarize

BROWSER_MODE = "browser/wasm"


def web_model_key(target: BenchTarget) -> str | None:
    """The manifest key (``onnx`` / ``onnx-int8``) a web app can be built for, else None."""
    from ..web.app import WEB_MODELS

    if target.path.suffix != ".onnx":
        return None
    manifest = manifest_of(target.path.parent, required=False)
    return next((key for key in WEB_MODELS if manifest and key in manifest.exports
                 and manifest.exports[key].file == target.path.name), None)


def browser_rows(targets: list[BenchTarget], *, runs: int, warmup: int, notes: list[str]) -> list[dict[str, Any]]:
    """One batch-1 row per ONNX export of a bundle; a note instead when no browser can run here."""
    from ..web import build_web_app, find_ort_web, serving
    from ..web.browser import chromium, open_app, page_benchmark

    chosen = [(t, key) for t in targets if (key := web_model_key(t))]
    if not chosen:
        return []
    rows = []
    try:
        find_ort_web()  # before starting a browser that would have nothing to run
        with chromium() as driver, tempfile.TemporaryDirectory(prefix="edgecnn-web-bench-") as tmp:
            for target, key in chosen:
                app = build_web_app(target.path.parent, Path(tmp) / key, model=key)
                with serving(app.folder) as url:
                    started = time.perf_counter()
                    open_app(driver, url)
                    load_s = time.perf_counter() - started
                    latency = summarize(page_benchmark(driver, runs, warmup))
                rows.append(_row(target, latency, load_s, runs, warmup, app.bytes))
    except EdgecnnError as exc:  # no Chromium, Selenium or onnxruntime-web here: the native rows still stand
        notes.append(f"no browser rows: {exc}")
        return []
    return rows


def _row(target: BenchTarget, latency, load_s: float, runs: int, warmup: int, app_bytes: int) -> dict[str, Any]:
    facts = target.facts.to_dict() if target.facts else {}
    return {"name": target.name, "file": str(target.path), "backend": "onnxruntime-web", "precision": target.precision,
            "mode": BROWSER_MODE, "batch_size": 1, "threads": 1, "load_s": load_s, "first_inference_s": None,
            "latency_s": latency.to_dict(), "images_per_s": 1 / latency.p50, "peak_rss_mb": None, **facts,
            "accuracy": target.accuracy, "runs": runs, "warmup": warmup, "web_app_bytes": app_bytes}
