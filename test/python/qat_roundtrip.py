"""QAT round trip for test/unit/qat.test.ts: apply a QuantLens plan to samples/tiny_vlm/model.py, train a few
steps, export the fake-quantized model (QDQ) and the same trained weights without fake-quant.
Usage: qat_roundtrip.py PLAN.json OUT_QAT.onnx OUT_FLOAT.onnx"""
import json
import os
import sys

import torch

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "python"))
sys.path.insert(0, os.path.join(root, "samples", "tiny_vlm"))
import quantlens_qat  # noqa: E402
import model as tiny_vlm  # noqa: E402

plan_path, out_qat, out_float = sys.argv[1:4]
plan = json.load(open(plan_path))
torch.manual_seed(0)
net = tiny_vlm.TinyVLM()
wrapped = quantlens_qat.apply_plan(net, plan)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
losses = []
for step in range(6):
    pixels = torch.randn(4, 3, 32, 32)
    ids = torch.randint(0, tiny_vlm.VOCAB, (4, tiny_vlm.TEXT_LEN))
    logits = net(pixels, ids)
    # a toy objective: predict the next token id of the text part
    target = torch.roll(ids, -1, dims=1)
    loss = torch.nn.functional.cross_entropy(logits[:, -tiny_vlm.TEXT_LEN:].reshape(-1, tiny_vlm.VOCAB), target.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(loss))
net.eval()
args = (torch.randn(1, 3, 32, 32), torch.randint(0, tiny_vlm.VOCAB, (1, tiny_vlm.TEXT_LEN)))
kw = dict(input_names=["pixel_values", "input_ids"], output_names=["logits"], opset_version=14,
          dynamic_axes={"pixel_values": {0: "batch"}, "input_ids": {0: "batch"}, "logits": {0: "batch"}})
torch.onnx.export(net, args, out_qat, **kw)
plain = tiny_vlm.TinyVLM()
plain.load_state_dict(net.state_dict(), strict=False)
plain.eval()
torch.onnx.export(plain, args, out_float, **kw)
try:
    quantlens_qat.apply_plan(tiny_vlm.TinyVLM().vision_model, plan)
    mismatch = None
except quantlens_qat.PlanMismatch as e:
    mismatch = str(e)
print(json.dumps({"wrapped": len(wrapped), "losses": losses, "mismatch": mismatch}))
