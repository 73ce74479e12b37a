"""A small JSON model card stored inside every exported file, so a file copied out of its bundle knows itself.

The card holds what a runtime needs to use a bare file (class names,
preprocessing) and what a person needs to recognise it (export format,
precision, edgecnn version). TFLite keeps it as a metadata entry named
:data:`CARD_NAME` whose buffer is the UTF-8 JSON; ONNX (and the ORT files
converted from it) keep it in ``metadata_props`` under the same key, beside the
``class_names`` and ``preprocessing`` keys that older files already carry.

Reading a TFLite card walks the flatbuffer's tables directly instead of
importing LiteRT's generated schema module: that import alone costs 20-40 ms,
a sizeable part of the Predictor's cold start.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from .errors import ModelFileError
from .fileio import read_model_bytes

CARD_FORMAT = "edgecnn-model-card"
CARD_VERSION = 1
#: The TFLite metadata entry and the ONNX metadata_props key that hold the card.
CARD_NAME = "edgecnn_model_card"
#: The card's fields that runtimes read, stored as JSON strings under their own name (ONNX's keys since the start).
METADATA_KEYS = ("class_names", "preprocessing")
_TFLITE_IDENTIFIER = b"TFL3"


def model_card(class_names: list[str], preprocessing: dict[str, Any], *, export_format: str,
               precision: str) -> dict[str, Any]:
    """The card of one exported file."""
    from . import __version__

    return {"format": CARD_FORMAT, "version": CARD_VERSION, "class_names": list(class_names),
            "preprocessing": dict(preprocessing), "export_format": export_format, "precision": precision,
            "edgecnn_version": __version__}


def card_json(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))


def card_metadata(card: dict[str, Any]) -> dict[str, str]:
    """The card as string metadata (ONNX ``metadata_props``, a backend's ``metadata``): the whole card and its
    class names and preprocessing as JSON strings."""
    return {**{key: json.dumps(card[key]) for key in METADATA_KEYS if key in card}, CARD_NAME: card_json(card)}


def parse_card(raw: bytes | str, where: str | os.PathLike) -> dict[str, Any]:
    """A stored card back as a dict; ``ModelFileError`` naming ``where`` when it is not an edgecnn model card."""
    try:
        card = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{where}: its {CARD_NAME} is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelFileError(f"{where}: its {CARD_NAME} is not a JSON object with \"format\": \"{CARD_FORMAT}\"")
    return card


def embed_tflite_card(model: bytes, card: dict[str, Any]) -> bytes:
    """The TFLite flatbuffer with ``card`` in a metadata entry named :data:`CARD_NAME` (replacing one already there).

    The model is rewritten through LiteRT's object API; tensors, operators and
    weights are carried over unchanged, so the interpreter computes the same outputs.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    add_tflite_card(tree, card)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def add_tflite_card(tree: Any, card: dict[str, Any]) -> None:
    """:func:`embed_tflite_card` on a flatbuffer already read into LiteRT's object API (``ModelT``), in place:
    export edits the file once for its signature and its card."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = np.frombuffer(card_json(card).encode("utf-8"), dtype=np.uint8)
    tree.metadata = tree.metadata or []
    tree.buffers = tree.buffers or []
    ours = [entry for entry in tree.metadata if _text(entry.name) == CARD_NAME]
    if ours:
        tree.metadata = [entry for entry in tree.metadata if entry not in ours[1:]]
        tree.buffers[ours[0].buffer].data = data
    else:
        buffer, entry = schema.BufferT(), schema.MetadataT()
        buffer.data = data
        entry.name, entry.buffer = CARD_NAME, len(tree.buffers)
        tree.buffers.append(buffer)
        tree.metadata.append(entry)


def read_tflite_card(model: bytes | str | os.PathLike, *, name: str | os.PathLike | None = None) -> dict | None:
    """The card stored in a TFLite file (its bytes or its path); None when it has none.

    Raises ``ModelFileError`` naming the file (``name``, else the path) when the
    card is not a valid edgecnn model card or the file is not a TFLite flatbuffer.
    """
    where, data = _load(model, name)
    raw = tflite_card_bytes(data, where)
    return None if raw is None else parse_card(raw, where)


def tflite_metadata(model: bytes, where: str | os.PathLike) -> dict[str, str]:
    """A TFLite file's card as string metadata like ONNX's (see :func:`card_metadata`); empty without a card.

    A card that does not parse is passed on unread under :data:`CARD_NAME`, so
    the Predictor ignores it with a note, as it does with bad ONNX metadata.
    """
    raw = tflite_card_bytes(model, where)
    if raw is None:
        return {}
    try:
        return card_metadata(parse_card(raw, where))
    except ModelFileError:
        return {CARD_NAME: raw.decode("utf-8", errors="replace")}


def tflite_card_bytes(model: bytes, where: str | os.PathLike) -> bytes | None:
    """The raw bytes of the card entry, read straight from the flatbuffer's Model, Metadata and Buffer tables."""
    reader = _FlatBuffer(model, where)
    if model[4:8] != _TFLITE_IDENTIFIER:
        raise ModelFileError(f"{where}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    root = reader.offset(0)
    buffers = reader.field(root, 4)  # Model: version, operator_codes, subgraphs, description, buffers, ...
    for entry in reader.tables(reader.field(root, 6)):  # ... metadata_buffer, metadata
        name = reader.field(entry, 0)
        if name is None or reader.vector(name) != CARD_NAME.encode():
            continue
        index = reader.scalar(entry, 1, "<I")  # Metadata: name, buffer
        tables = reader.tables(buffers)
        if index is None or index >= len(tables):
            raise ModelFileError(f"{where}: metadata '{CARD_NAME}' points at buffer {index}, which does not exist")
        buffer = tables[index]
        data = reader.field(buffer, 0)  # Buffer: data, offset, size (offset/size: models over 2 GB)
        if data is not None:
            return reader.vector(data)
        start, size = reader.scalar(buffer, 1, "<Q") or 0, reader.scalar(buffer, 2, "<Q") or 0
        return reader.span(start, size)
    return None


class _FlatBuffer:
    """Bounds-checked reads of flatbuffer tables: a damaged file raises ``ModelFileError``, never reads past its end."""

    def __init__(self, data: bytes, where: str | os.PathLike) -> None:
        self.data, self.where = data, where

    def span(self, start: int, size: int) -> bytes:
        if start < 0 or size < 0 or start + size > len(self.data):
            raise ModelFileError(f"{self.where}: truncated or damaged TFLite flatbuffer "
                                 f"(a field at byte {start} runs past the end of the file)")
        return self.data[start:start + size]

    def unpack(self, fmt: str, at: int) -> int:
        return struct.unpack(fmt, self.span(at, struct.calcsize(fmt)))[0]

    def offset(self, at: int) -> int:
        """The position a uoffset stored at ``at`` points to."""
        return at + self.unpack("<I", at)

    def _slot(self, table: int, field: int) -> int | None:
        vtable = table - self.unpack("<i", table)
        slot = 4 + 2 * field
        if slot >= self.unpack("<H", vtable):
            return None
        relative = self.unpack("<H", vtable + slot)
        return table + relative if relative else None

    def field(self, table: int, field: int) -> int | None:
        """Where a reference field (table, vector, string) points; None when absent."""
        at = self._slot(table, field)
        return None if at is None else self.offset(at)

    def scalar(self, table: int, field: int, fmt: str) -> int | None:
        at = self._slot(table, field)
        return None if at is None else self.unpack(fmt, at)

    def vector(self, at: int) -> bytes:
        return self.span(at + 4, self.unpack("<I", at))

    def tables(self, at: int | None) -> list[int]:
        """The table positions of a vector of tables (empty when the field is absent)."""
        if at is None:
            return []
        count = self.unpack("<I", at)
        self.span(at + 4, 4 * count)
        return [self.offset(at + 4 + 4 * i) for i in range(count)]


def _load(model: bytes | str | os.PathLike, name: str | os.PathLike | None) -> tuple[str | os.PathLike, bytes]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return name or "TFLite model", bytes(model)
    return name or model, read_model_bytes(Path(model), "TFLite (.tflite)")


def _text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
