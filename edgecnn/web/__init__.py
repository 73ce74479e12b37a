"""`edgecnn web`: a static page that classifies images in the browser with the bundle's ONNX model."""
from __future__ import annotations

from .app import ORT_WEB_FILES, WebApp, build_web_app, find_ort_web
from .server import serve, serving

__all__ = ["ORT_WEB_FILES", "WebApp", "build_web_app", "find_ort_web", "serve", "serving"]
