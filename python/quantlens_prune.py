"""Apply what `quantlens prune --masks masks.json` kept to a PyTorch model, for fine-tuning.

Unstructured and N:M runs store one bit-packed mask per module path; structured runs store the kept
output and input channels. Both become masks on the module's weight (and bias), registered as
parametrizations (torch.nn.utils.parametrize), so the removed weights stay zero while the user's loop
trains the rest, also where the model reads a weight directly (`self.embedding.weight`). Before
exporting, `finalize` makes the zeros permanent; then prune the export again with QuantLens to shrink it
(structured: the zeroed channels rank lowest, so the same sparsity removes exactly them).

Structured runs also carry bias compensation: what QuantLens added to a layer's bias for the removed
inputs' mean is added to the PyTorch bias too (a layer without one, like Linear(bias=False), gets a
bias parameter holding it), so the masked model starts where the pruned ONNX model is.

Structured runs with --prune-norm also list per-channel parameters (LayerNorm/RMSNorm scales, embedding
tables) and norm modules. The parameters get masks like the weights; each norm module then computes its
statistics over the kept channels only and writes zeros elsewhere, as the pruned ONNX model does, so
fine-tuning sees what QuantLens's model computes.

    import json, quantlens_prune
    doc = json.load(open("masks.json"))
    quantlens_prune.apply_masks(model, doc)      # raises MaskMismatch if a path or shape does not fit
    ... train as usual ...
    quantlens_prune.finalize(model)
    torch.onnx.export(model, args, "model.finetuned.onnx")
"""
import base64
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize


class MaskMismatch(KeyError):
    """The masks name module paths this model lacks, or shapes that differ (masks of another model)."""


class Mask(nn.Module):
    """weight * mask; while a restricted norm runs, also only the kept channels (`select`)."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)
        self.select = None

    def forward(self, weight):
        weight = weight * self.mask
        return weight if self.select is None else weight.index_select(*self.select)


def mask_of(module, name="weight"):
    """The mask registered on `module.<name>`, or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    found = [p for p in module.parametrizations[name] if isinstance(p, Mask)]
    return found[0].mask if found else None


def _mask_of(entry, weight):
    shape = [int(d) for d in entry["shape"]]
    if "mask" in entry:
        bits = np.unpackbits(np.frombuffer(base64.b64decode(entry["mask"]), dtype=np.uint8))[: int(np.prod(shape))]
        mask = torch.from_numpy(bits.reshape(shape).astype(np.float32))
        # nn.Linear exported as MatMul stores its weight as [in, out]: PyTorch's is the transpose.
        return mask.t().contiguous() if entry.get("transposed") else mask
    mask = torch.ones_like(weight)
    # Outputs are axis 0 of PyTorch's weight, inputs axis 1; ConvTranspose stores them the other way round.
    out_axis = int(entry.get("outputAxis", 0))
    for key, axis in (("keptOutputs", out_axis), ("keptInputs", 1 - out_axis)):
        if key in entry:
            drop = [i for i in range(weight.shape[axis]) if i not in set(entry[key])]
            mask.index_fill_(axis, torch.tensor(drop, dtype=torch.long), 0)
    return mask


def _register(module, name, mask):
    tensor = getattr(module, name)
    parametrize.register_parametrization(module, name, Mask(mask.to(tensor.device, tensor.dtype)))


def _param_path(name):
    module, _, attr = name.rpartition(".")
    return module, attr


def _restrict_norm(module, axis, kept, sliced):
    """Makes `module` normalise over the kept channels of `axis` (from the end) and write zeros elsewhere.
    `sliced`: {attribute: its channel axis} of the per-channel tensors it reads."""
    if hasattr(module, "_quantlens_forward"):
        return
    forward = module.forward
    index = torch.tensor(kept, dtype=torch.long)

    def restricted(x, *args, **kwargs):
        i = index.to(x.device)
        masks, plain = [], {}
        shape = getattr(module, "normalized_shape", None)
        try:
            for a, ax in sliced.items():
                found = [p for p in module.parametrizations[a] if isinstance(p, Mask)] if parametrize.is_parametrized(module, a) else []
                if found:
                    found[0].select = (ax, i)
                    masks.append(found[0])
                elif a in module._parameters:  # finalized: a plain parameter, lent out sliced for this call
                    plain[a] = module._parameters.pop(a)
                    object.__setattr__(module, a, plain[a].index_select(ax, i))
            if shape is not None:
                module.normalized_shape = (len(kept),)
            y = forward(x.index_select(x.dim() + axis, i), *args, **kwargs)
        finally:
            for m in masks:
                m.select = None
            for a, p in plain.items():
                del module.__dict__[a]
                module._parameters[a] = p
            if shape is not None:
                module.normalized_shape = shape
        return x.new_zeros(x.shape, dtype=y.dtype).index_copy(x.dim() + axis, i, y)

    module._quantlens_forward = forward
    module.forward = restricted


def apply_masks(model, doc):
    """Registers a mask on every weight and parameter the file names, and restricts its norm modules to
    the kept channels; returns what it applied (module paths and parameter names)."""
    if doc.get("format") != "quantlens-prune-masks":
        raise ValueError("not a QuantLens masks file (format %r)" % doc.get("format"))
    modules = dict(model.named_modules())
    params = doc.get("params", {})
    missing = [p for p in doc["layers"] if p not in modules]
    missing += [n for n in params if _param_path(n)[0] not in modules or not hasattr(modules[_param_path(n)[0]], _param_path(n)[1])]
    missing += [p for p in doc.get("norms", {}) if p not in modules]
    if missing:
        raise MaskMismatch("the masks name %d module(s) this model does not have: %s" % (len(missing), ", ".join(missing)))
    applied, unshifted = [], []
    for path, entry in doc["layers"].items():
        module = modules[path]
        # Bias compensation: QuantLens moved the removed inputs' mean contribution into this bias.
        if "biasShift" in entry:
            shift = torch.tensor(entry["biasShift"], dtype=module.weight.dtype, device=module.weight.device)
            if hasattr(module, "bias") and module.bias is None:
                # Linear(bias=False) and friends: the pruned ONNX model added one; so does the masked model.
                module.bias = nn.Parameter(shift)
            elif getattr(module, "bias", None) is None or module.bias.numel() != shift.numel():
                unshifted.append(path)
            else:
                with torch.no_grad():
                    module.bias.add_(shift)
        mask = _mask_of(entry, module.weight)
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise MaskMismatch("%s: mask shape %s, weight shape %s" % (path, tuple(mask.shape), tuple(module.weight.shape)))
        _register(module, "weight", mask)
        if "keptOutputs" in entry and getattr(module, "bias", None) is not None:
            bias_mask = torch.zeros_like(module.bias)
            bias_mask[entry["keptOutputs"]] = 1
            _register(module, "bias", bias_mask)
        applied.append(path)
    sliced = {}
    for name, entry in params.items():
        path, attr = _param_path(name)
        module = modules[path]
        sliced.setdefault(path, {})[attr] = int(entry["axis"])
        # A layer's bias is masked above; buffers (BatchNorm running statistics) are not trained.
        if parametrize.is_parametrized(module, attr) or attr not in module._parameters:
            continue
        tensor = getattr(module, attr)
        if list(tensor.shape) != [int(d) for d in entry["shape"]]:
            raise MaskMismatch("%s: mask shape %s, parameter shape %s" % (name, tuple(entry["shape"]), tuple(tensor.shape)))
        kept = torch.tensor(entry["kept"], dtype=torch.long, device=tensor.device)
        _register(module, attr, torch.zeros_like(tensor).index_fill_(int(entry["axis"]), kept, 1))
        applied.append(name)
    for path, entry in doc.get("norms", {}).items():
        _restrict_norm(modules[path], int(entry["axis"]), entry["kept"], sliced.get(path, {}))
        applied.append(path)
    if unshifted:
        warnings.warn("%d layer(s) have no bias here for the mean of the removed channels that QuantLens folded into "
                      "theirs (%s); fine-tuning starts without that compensation" % (len(unshifted), ", ".join(unshifted)))
    unnamed = int(doc.get("unnamedParams", 0)) + int(doc.get("unnamedNorms", 0))
    if unnamed:
        warnings.warn("%d pruned parameter(s) or norm(s) had no PyTorch name in the export; they stay unmasked "
                      "here, so fine-tuning differs from QuantLens's pruned model there" % unnamed)
    return applied


def finalize(model, restricted_norms=False):
    """Makes the masks permanent (plain weights with zeros), as export and state dicts expect.
    Norm modules go back to normalising over all channels, so QuantLens can prune the export again
    (--prune-norm at the same sparsity); `restricted_norms=True` keeps them over the kept channels, and
    the export then computes what QuantLens's pruned model computes, at full width."""
    for module in model.modules():
        for name in list(getattr(module, "parametrizations", {}) or {}):
            if mask_of(module, name) is not None:
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        if not restricted_norms and hasattr(module, "_quantlens_forward"):
            module.forward = module._quantlens_forward
            del module._quantlens_forward
    return model
