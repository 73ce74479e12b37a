"""Serve a web app folder on 127.0.0.1: browsers refuse wasm and model fetches from file:// pages."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

from ..errors import EdgecnnError

#: What browsers need to hear: wasm must be application/wasm to compile streaming, .mjs a JavaScript type.
MIME_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
              ".onnx": "application/octet-stream", ".json": "application/json", ".css": "text/css"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # one line per request would drown the URL the user needs


def _server(folder: str | os.PathLike, port: int) -> http.server.ThreadingHTTPServer:
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise EdgecnnError(f"{folder} has no index.html: not a web app folder (make one with `edgecnn web`)")
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Handler, directory=str(folder)))
    except OSError as exc:
        raise EdgecnnError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None


def url_of(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def serve(folder: str | os.PathLike, port: int = 8000, on_ready=print) -> None:
    """Serve ``folder`` until interrupted; ``on_ready(url)`` is called once it listens."""
    server = _server(folder, port)
    on_ready(url_of(server))
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


@contextlib.contextmanager
def serving(folder: str | os.PathLike, port: int = 0) -> Iterator[str]:
    """Serve ``folder`` in a background thread for the block (port 0: any free one); yields the URL."""
    server = _server(folder, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
