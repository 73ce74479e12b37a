"""How much of a TFLite file LiteRT's default XNNPACK delegate takes, from the partitions it replaced nodes with.

What XNNPACK leaves out runs on LiteRT's reference CPU kernels, between
partitions: verify reports it for phones, benchmarks count partitions with it,
and mixed precision weighs keeping such a layer float (a runtime fact, so it
lives with the runtimes, not in verify or quantize).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .. import tfquiet


@dataclass(frozen=True)
class CpuOp:
    """One op XNNPACK left to LiteRT's own kernels, with the names of the tensors it writes."""

    op: str
    outputs: tuple[str, ...]


def _walk(model: str | os.PathLike | bytes) -> tuple[int, int, list[CpuOp]]:
    """(partitions, delegated nodes, the ops left out) of the file under XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter

    with tfquiet.quiet():
        interpreter = (Interpreter(model_content=model) if isinstance(model, bytes)
                       else Interpreter(model_path=os.fspath(model)))
        interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # noqa: SLF001 (LiteRT's only op listing)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    original = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n["index"] for n in original for t in n["outputs"]}
    by_index = {n["index"]: n for n in original}
    taken: set[int] = set()
    partitions = [n for n in nodes if n["op_name"] == "DELEGATE"]
    for partition in partitions:  # walk back from the partition's outputs to its inputs
        boundary, stack = {int(t) for t in partition["inputs"]}, [int(t) for t in partition["outputs"]]
        while stack:
            tensor = stack.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in taken:
                continue
            taken.add(node)
            stack += [int(t) for t in by_index[node]["inputs"] if int(t) >= 0]
    rest = [CpuOp(n["op_name"], tuple(names.get(int(t), "") for t in n["outputs"] if int(t) >= 0))
            for n in original if n["index"] not in taken]
    return len(partitions), len(taken), rest


def cpu_ops(model: str | os.PathLike | bytes) -> list[CpuOp]:
    """The ops XNNPACK leaves on the CPU, in graph order."""
    return _walk(model)[2]


def xnnpack_coverage(model: str | os.PathLike | bytes) -> dict[str, Any]:
    """Nodes, delegated nodes, partitions, and the ops left on the CPU."""
    partitions, delegated, rest = _walk(model)
    return {"checked": True, "nodes": delegated + len(rest), "delegated_nodes": delegated, "partitions": partitions,
            "whole_graph": not rest and partitions == 1, "not_delegated": [op.op for op in rest]}
