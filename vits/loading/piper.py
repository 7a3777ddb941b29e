"""Load a Piper voice (.onnx + .onnx.json) into the PyTorch model.

The exported graph keeps most parameters under their PyTorch names. The rest are found by
the graph node that consumes them: tensors that weight norm folding renamed to
`onnx::Conv_*`, the text embedding (named `sid` by the exporter) and the duration
predictor's first flow, whose `logs` only survives as the constant-folded `exp(-logs)`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import VoiceLoadError
from ..model import SynthesizerTrn
from .common import build_model, infer_config

_NODE_PATH = re.compile(r"^/((?:[A-Za-z_][\w]*(?:\.\d+)?/)*[A-Za-z_][\w]*(?:\.\d+)?)/[A-Za-z]+(?:_\d+)?$")
_EXP_CONST = re.compile(r"^/(.+)/Exp_output_0$")
_INPUT_ROLE = {("Conv", 1): "weight", ("Conv", 2): "bias", ("ConvTranspose", 1): "weight",
               ("ConvTranspose", 2): "bias", ("Gather", 0): "weight"}  # fmt: skip


def _module_path(node_name: str) -> str | None:
    match = _NODE_PATH.match(node_name)
    return match.group(1).replace("/", ".") if match else None


def read_onnx(model_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, dict[str, Any]]]:
    """Return (parameters by module path, file name of each renamed one, attributes of conv nodes by path)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:  # pragma: no cover - dependency of the package
        raise VoiceLoadError("the 'onnx' package is needed to read Piper voices") from error
    try:
        proto = onnx.load(str(model_path))
    except Exception as error:
        raise VoiceLoadError(f"{model_path} is not a readable ONNX file: {error}") from error
    graph = proto.graph
    consumers: dict[str, list[tuple[str, str, int]]] = {}
    attributes: dict[str, dict[str, Any]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.name, node.op_type, index))
        if node.op_type in ("Conv", "ConvTranspose") and (path := _module_path(node.name)):
            attributes[path] = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    tensors: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    for init in graph.initializer:
        name = init.name
        target: str | None = None
        transform = None
        if re.match(r"^(enc_p|dp|flow|dec|emb_g)\.", name):
            target = name
        elif match := _EXP_CONST.match(name):
            # Mul by exp(-logs) in the affine flow's reverse pass: recover logs.
            target = match.group(1).replace("/", ".") + ".logs"
            transform = "neg_log"
        else:
            for node_name, op_type, index in consumers.get(name, []):
                role = _INPUT_ROLE.get((op_type, index))
                path = _module_path(node_name)
                if role and path and path.startswith(("enc_p.", "dp.", "flow.", "dec.", "emb_g")):
                    target = f"{path}.{role}"
                    break
        if target is None:
            continue  # a graph constant (shapes, split sizes), not a parameter
        array = numpy_helper.to_array(init)
        value = torch.from_numpy(array.copy())
        if transform == "neg_log":
            if not bool((value > 0).all()):
                raise VoiceLoadError(f"tensor {name!r} must be positive (it is exp(-logs))")
            value = -torch.log(value)
        if target in tensors:
            raise VoiceLoadError(f"tensor {name!r} maps to {target!r}, which another tensor already provides")
        tensors[target] = value
        if target != name:
            sources[target] = name
    return tensors, sources, attributes


def _attr_tuple(attributes: dict[str, dict[str, Any]], path: str, key: str) -> int | None:
    values = attributes.get(path, {}).get(key)
    return int(values[0]) if values else None


def load_piper_model(model_path: Path, *, n_speakers: int) -> SynthesizerTrn:
    """Read the ONNX initializers and build the matching PyTorch model."""
    tensors, sources, attrs = read_onnx(model_path)
    n_ups = len([p for p in attrs if re.fullmatch(r"dec\.ups\.\d+", p)])
    rates = tuple(_attr_tuple(attrs, f"dec.ups.{i}", "strides") or 0 for i in range(n_ups))
    dilations: list[tuple[int, ...]] = []
    j = 0
    while f"dec.resblocks.{j}.convs1.0" in attrs or f"dec.resblocks.{j}.convs.0" in attrs:
        conv = "convs1" if f"dec.resblocks.{j}.convs1.0" in attrs else "convs"
        layer_dilations = []
        k = 0
        while (d := _attr_tuple(attrs, f"dec.resblocks.{j}.{conv}.{k}", "dilations")) is not None:
            layer_dilations.append(d)
            k += 1
        dilations.append(tuple(layer_dilations))
        j += 1
    num_kernels = len(dilations) // n_ups if n_ups else 0
    flow_dilation = _attr_tuple(attrs, "flow.flows.0.enc.in_layers.1", "dilations") or 1
    config = infer_config(
        tensors,
        n_speakers=n_speakers,
        upsample_rates=rates if rates and all(rates) else None,
        resblock_dilations=tuple(dilations[:num_kernels]) if num_kernels else None,
        flow_dilation_rate=flow_dilation,
    )
    if not math.isfinite(config.duration.tail_bound):  # pragma: no cover - defensive
        raise VoiceLoadError("invalid tail bound")
    return build_model(config, tensors, sources=sources)
