"""Apply what `quantlens prune --masks masks.json` kept to a PyTorch model, for fine-tuning.

Unstructured and N:M runs store one bit-packed mask per module path; structured runs store the kept
output and input channels. Both become `torch.nn.utils.prune` masks on the module's weight (and bias),
so the removed weights stay zero while the user's loop trains the rest. Before exporting, `finalize`
makes the zeros permanent; then prune the export again with QuantLens to shrink it (structured).

    import json, quantlens_prune
    doc = json.load(open("masks.json"))
    quantlens_prune.apply_masks(model, doc)      # raises MaskMismatch if a path or shape does not fit
    ... train as usual ...
    quantlens_prune.finalize(model)
    torch.onnx.export(model, args, "model.finetuned.onnx")
"""
import base64

import numpy as np
import torch
from torch.nn.utils import prune


class MaskMismatch(KeyError):
    """The masks name module paths this model lacks, or shapes that differ (masks of another model)."""


def _mask_of(entry, weight):
    shape = [int(d) for d in entry["shape"]]
    if "mask" in entry:
        bits = np.unpackbits(np.frombuffer(base64.b64decode(entry["mask"]), dtype=np.uint8))[: int(np.prod(shape))]
        mask = torch.from_numpy(bits.reshape(shape).astype(np.float32))
        # nn.Linear exported as MatMul stores its weight as [in, out]: PyTorch's is the transpose.
        return mask.t().contiguous() if entry.get("transposed") else mask
    mask = torch.ones_like(weight)
    if "keptOutputs" in entry:
        drop = [i for i in range(weight.shape[0]) if i not in set(entry["keptOutputs"])]
        mask[drop] = 0
    if "keptInputs" in entry:
        drop = [i for i in range(weight.shape[1]) if i not in set(entry["keptInputs"])]
        mask[:, drop] = 0
    return mask


def apply_masks(model, doc):
    """Registers a pruning mask on every module the file names; returns their paths."""
    if doc.get("format") != "quantlens-prune-masks":
        raise ValueError("not a QuantLens masks file (format %r)" % doc.get("format"))
    modules = dict(model.named_modules())
    missing = [p for p in doc["layers"] if p not in modules]
    if missing:
        raise MaskMismatch("the masks name %d module(s) this model does not have: %s" % (len(missing), ", ".join(missing)))
    applied = []
    for path, entry in doc["layers"].items():
        module = modules[path]
        mask = _mask_of(entry, module.weight)
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise MaskMismatch("%s: mask shape %s, weight shape %s" % (path, tuple(mask.shape), tuple(module.weight.shape)))
        prune.custom_from_mask(module, "weight", mask.to(module.weight.device, module.weight.dtype))
        if "keptOutputs" in entry and getattr(module, "bias", None) is not None:
            bias_mask = torch.zeros_like(module.bias)
            bias_mask[entry["keptOutputs"]] = 1
            prune.custom_from_mask(module, "bias", bias_mask)
        applied.append(path)
    return applied


def finalize(model):
    """Makes the masks permanent (plain weights with zeros), as export and state dicts expect."""
    for module in model.modules():
        for name in ("weight", "bias"):
            if prune.is_pruned(module) and hasattr(module, name + "_mask"):
                prune.remove(module, name)
    return model
