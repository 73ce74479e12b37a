"""The names of the int8 layers, one home for both formats: the Keras layer each weighted graph op comes from.

The rows of ``edgecnn explain`` and of a manifest's ``layers`` must name what
the user wrote (``block_1_expand``), not what a converter traced
(``block_1_expand_1/convolution``, or ``batchnorm`` once a BatchNormalization
is folded in). TFLite (:mod:`.tflite_layers`) and ONNX (:mod:`.onnx_layers`)
both keep the Keras scopes in their graph names, so each format only says which
scopes each weighted op carries, and the same rules name the same model's
layers alike in both.
"""
from __future__ import annotations

import re
from typing import Collection, Iterable, Sequence

#: One row per weighted graph op: (row name, the Keras layer it comes from); a SeparableConv2D gives two rows.
Rows = Sequence[tuple[str, str]]


def keras_layers(model) -> tuple[list[tuple[str, str]], set[str]]:
    """The Keras layers that become weighted graph ops, as (row name, layer name) in layer order, nested models'
    layers included; and the names of the models (their scopes name no layer).

    A user's wrapper (``Input -> Rescaling -> MobileNetV2``) holds the network
    as one layer, so its layers are collected from inside. One row per kernel:
    a BatchNormalization has weights but is folded into the convolution before
    it, a SeparableConv2D is two convolutions (``name/depthwise``, ``name/pointwise``).
    """
    from ..model import all_layers

    layers = all_layers(model)
    models = {model.name, *(layer.name for layer in layers if hasattr(layer, "layers"))}
    rows: list[tuple[str, str]] = []
    for layer in layers:
        if hasattr(layer, "layers"):
            continue
        kernels = [name for name in map(_weight_name, layer.weights) if name.endswith("kernel")]
        rows.extend((layer.name if len(kernels) == 1 else f"{layer.name}/{kernel.removesuffix('_kernel')}",
                     layer.name) for kernel in kernels)
    return rows, models


def _weight_name(weight) -> str:
    """``conv2d/kernel`` (Keras 3's path; tf.keras's ``conv2d/kernel:0``) -> ``kernel``."""
    return (getattr(weight, "path", None) or weight.name).split("/")[-1].split(":")[0]


def scopes(names: Iterable[str]) -> list[str]:
    """The path components of graph names (``a/conv_1/Conv:0`` -> a, conv_1, Conv), each of the names a fused
    op joins with ``;`` included: converters name ops and tensors after the Keras layers they come from, and a
    fused op after each (TFLite's ``.../block_1_expand_1/convolution;.../block_1_expand_BN_1/FusedBatchNormV3``)."""
    return [part.split(":")[0] for name in names for part in re.split(r"[;/]", name) if part]


def names_layer(scope: str, layer: str) -> bool:
    """Whether a graph scope is that of the Keras layer: its name, or its name with the suffix tracing adds
    (``conv2d_1`` for ``conv2d``, which is why a name alone can be ambiguous)."""
    return scope == layer or re.fullmatch(re.escape(layer) + r"_\d+", scope) is not None


def match(op_scopes: Sequence[Sequence[str]], rows: Rows) -> list[str | None]:
    """Per weighted op (its :func:`scopes`), its Keras row name (None where the graph cannot tell).

    One row per op in the same order (the usual case) is taken as is, unless
    an op's scopes name other Keras layers but not its row's (a different
    order, e.g. of parallel branches). Otherwise each op takes the one layer
    its scopes can name, repeatedly, so ``conv2d_1`` resolves once another op
    has claimed ``conv2d``'s or ``conv2d_1``'s row.
    """
    layers = {layer for _, layer in rows}
    named = [{layer for layer in layers if any(names_layer(s, layer) for s in op)} for op in op_scopes]
    if len(rows) == len(op_scopes) and all(not found or layer in found for found, (_, layer) in zip(named, rows)):
        return [row for row, _ in rows]
    left: dict[str, list[str]] = {}
    for row, layer in rows:
        left.setdefault(layer, []).append(row)
    found: list[str | None] = [None] * len(op_scopes)
    progress = True
    while progress:
        progress = False
        for i, candidates in enumerate(named):
            live = [layer for layer in candidates if left.get(layer)] if found[i] is None else []
            if len(live) == 1:
                found[i], progress = left[live[0]].pop(0), True
    return found


def short_name(name: str, op: str, index: int, models: Collection[str] = ()) -> str:
    """``model/conv2d_1/BiasAdd`` -> ``conv2d_1``: the first scope below the outer one that is not a model's (a
    nested model's scope would name every layer in it alike); the op and its position when the name says nothing."""
    parts = name.split("/")
    inner = [part for part in parts[1:-1] if not any(names_layer(part, model) for model in models)]
    return inner[0] if inner else f"{op.lower()}_{index}"


def layer_names(op_scopes: Sequence[Sequence[str]], graph_names: Sequence[str], ops: Sequence[str],
                rows: Rows = (), models: Collection[str] = ()) -> list[str]:
    """Per weighted op, its Keras row name (:func:`match`), else :func:`short_name` of its graph name; a name
    two ops would share gets the op's position (``conv2d#3``): the names key each layer's SQNR and row."""
    found = match(op_scopes, rows)
    names = [name or short_name(graph, op, i, models)
             for i, (name, graph, op) in enumerate(zip(found, graph_names, ops))]
    return [name if names.count(name) == 1 else f"{name}#{i}" for i, name in enumerate(names)]
