"""Apply a QuantLens QAT plan (`quantlens qat-plan MODEL -o plan.json`) to a PyTorch model.

Every module the plan names (nn.Linear, nn.Conv1d/2d/3d) is wrapped so that, in training and in
export, its input goes through per-tensor affine fake-quant starting from the calibrated range, and its
weight through per-channel symmetric fake-quant. Gradients pass straight through (PyTorch's fake-quant
ops). torch.onnx.export (opset >= 13; 14 for the sample model) writes the fake-quant as QuantizeLinear/DequantizeLinear pairs
(8-bit only: PyTorch cannot export 4-bit fake-quant; 4-bit plans train, then quantize the trained float
export with `quantlens quantize --bits 4`).

    import json, quantlens_qat
    plan = json.load(open("plan.json"))
    quantlens_qat.apply_plan(model, plan)        # raises if the plan names modules the model lacks
    ... train as usual ...
    torch.onnx.export(model, args, "model.qat.onnx", opset_version=13)
"""
import torch
from torch import nn

_WRAPPABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class PlanMismatch(KeyError):
    """The plan names module paths this model does not have (a plan made for another model)."""


class FakeQuantized(nn.Module):
    """A Linear/Conv with fake-quantized input and weight, as the plan for its module path says."""

    def __init__(self, inner, spec):
        super().__init__()
        # The parameters keep their names (q_proj.weight, not q_proj.inner.weight): a state dict of the
        # wrapped model loads into the plain one. The original module stays as an unregistered helper.
        object.__setattr__(self, "_inner", inner)
        self.weight = inner.weight
        self.bias = inner.bias
        w = spec["weight"]
        # The scale is absmax / qmax of the plan: 127, or 63 where the plan asks for 7-bit weights (CPUs
        # whose int8 kernels saturate). ONNX export accepts only the int8 bounds -128..127 for the clamp;
        # with that scale the values never leave -qmax..qmax, so the result is the same.
        self.w_levels = int(w["qmax"])
        self.w_qmin, self.w_qmax = (-128, 127) if int(w.get("bits", 8)) == 8 else (int(w["qmin"]), int(w["qmax"]))
        self.w_per_channel = bool(w.get("perChannel", True))
        inp = spec.get("input")
        self.quantize_input = inp is not None
        if self.quantize_input:
            # The calibrated input range, fixed during training (PyTorch 1.13's fake-quant cannot learn it
            # and still export to ONNX); the weights learn to live with it.
            self.in_scale = float(inp["scale"])
            self.in_zero_point = int(inp["zeroPoint"])
            self.in_qmin, self.in_qmax = int(inp["qmin"]), int(inp["qmax"])

    def _weight(self):
        w = self.weight
        if self.w_per_channel:
            absmax = w.detach().abs().flatten(1).amax(dim=1).clamp(min=1e-8)
            scale = (absmax / self.w_levels).float()  # symmetric: qmax levels each side of zero
            zero = torch.zeros_like(scale, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, self.w_qmin, self.w_qmax)
        scale = float(w.detach().abs().max().clamp(min=1e-8) / self.w_levels)
        return torch.fake_quantize_per_tensor_affine(w, scale, 0, self.w_qmin, self.w_qmax)

    def forward(self, x):
        if self.quantize_input:
            x = torch.fake_quantize_per_tensor_affine(x, self.in_scale, self.in_zero_point, self.in_qmin, self.in_qmax)
        w = self._weight()
        if isinstance(self._inner, nn.Linear):
            return nn.functional.linear(x, w, self.bias)
        return self._inner._conv_forward(x, w, self.bias)


def apply_plan(model, plan, strict=True):
    """Wraps the plan's modules in place; returns the list of module paths wrapped."""
    if plan.get("format") != "quantlens-qat-plan/1":
        raise ValueError("not a QuantLens QAT plan (format %r)" % plan.get("format"))
    modules = dict(model.named_modules())
    missing = [p for p in plan["modules"] if p not in modules]
    if missing and strict:
        raise PlanMismatch("the plan names %d module(s) this model does not have: %s"
                           % (len(missing), ", ".join(sorted(missing))))
    wrapped = []
    for path, spec in plan["modules"].items():
        module = modules.get(path)
        if not isinstance(module, _WRAPPABLE):
            continue
        parent_path, _, attr = path.rpartition(".")
        parent = modules[parent_path] if parent_path else model
        setattr(parent, attr, FakeQuantized(module, spec))
        wrapped.append(path)
    return wrapped
