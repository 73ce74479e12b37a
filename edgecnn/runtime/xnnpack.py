"""How much of a TFLite file LiteRT's default XNNPACK delegate takes, from the partitions it replaced nodes with.

What XNNPACK leaves out runs on LiteRT's reference CPU kernels, between
partitions: verify reports it for phones, and benchmarks count partitions with it
(a runtime fact, so it lives with the runtimes, not in verify).
"""
from __future__ import annotations

import os
from typing import Any

from .. import tfquiet


def xnnpack_coverage(model: str | os.PathLike | bytes) -> dict[str, Any]:
    """Nodes, delegated nodes, partitions, and the ops left on the CPU."""
    from ai_edge_litert.interpreter import Interpreter

    with tfquiet.quiet():
        interpreter = (Interpreter(model_content=model) if isinstance(model, bytes)
                       else Interpreter(model_path=os.fspath(model)))
        interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # noqa: SLF001 (LiteRT's only op listing)
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
    rest = [n["op_name"] for n in original if n["index"] not in taken]
    return {"checked": True, "nodes": len(original), "delegated_nodes": len(taken), "partitions": len(partitions),
            "whole_graph": not rest and len(partitions) == 1, "not_delegated": rest}
