"""Pruning handoff round trip for test/unit/prune-handoff.test.ts, with samples/tiny_vlm/model.py.
  prune_roundtrip.py export OUT.onnx STATE.pt          seeded model, exported as PyTorch exports it
  prune_roundtrip.py apply STATE.pt MASKS.json OUT.onnx  masks applied, exported, then 3 training steps
  prune_roundtrip.py decoder-export OUT.onnx STATE.pt / decoder-apply STATE.pt MASKS.json OUT.onnx
      a small conv / ConvTranspose2d decoder instead of tiny_vlm
  prune_roundtrip.py norms STATE.pt MASKS.json WIDE.onnx FINAL.onnx
      --prune-norm masks: exported with the norms over the kept channels (WIDE) and finalized (FINAL)
Prints one JSON line."""
import json
import os
import sys

import torch

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "python"))
sys.path.insert(0, os.path.join(root, "samples", "tiny_vlm"))
import quantlens_prune  # noqa: E402
import model as tiny_vlm  # noqa: E402

args = (torch.randn(1, 3, 32, 32), torch.randint(0, tiny_vlm.VOCAB, (1, tiny_vlm.TEXT_LEN)))
kw = dict(input_names=["pixel_values", "input_ids"], output_names=["logits"], opset_version=14,
          dynamic_axes={"pixel_values": {0: "batch"}, "input_ids": {0: "batch"}, "logits": {0: "batch"}})



class Decoder(torch.nn.Module):
    """Conv → ConvTranspose2d (weight [in, out, k, k]) → Conv → pooled logits."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(16, 12, 2, stride=2)
        self.dec = torch.nn.Conv2d(12, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.dec(torch.relu(self.up(torch.relu(self.enc(x))))))
        return self.head(y.mean((2, 3)))


if sys.argv[1].startswith("decoder"):
    dargs = (torch.randn(1, 3, 8, 8),)
    dkw = dict(input_names=["x"], output_names=["logits"], opset_version=14, dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    net = Decoder()
    if sys.argv[1] == "decoder-export":
        torch.manual_seed(0)
        net = Decoder().eval()
        torch.onnx.export(net, dargs, sys.argv[2], **dkw)
        torch.save(net.state_dict(), sys.argv[3])
        print(json.dumps({"exported": sys.argv[2]}))
    else:
        net.load_state_dict(torch.load(sys.argv[2]))
        applied = quantlens_prune.apply_masks(net, json.load(open(sys.argv[3])))
        quantlens_prune.finalize(net.eval())
        torch.onnx.export(net, dargs, sys.argv[4], **dkw)
        print(json.dumps({"applied": applied}))
elif sys.argv[1] == "export":
    torch.manual_seed(0)
    net = tiny_vlm.TinyVLM().eval()
    torch.onnx.export(net, args, sys.argv[2], **kw)
    torch.save(net.state_dict(), sys.argv[3])
    print(json.dumps({"exported": sys.argv[2]}))
elif sys.argv[1] == "norms":
    state, masks, wide, final = sys.argv[2:6]
    doc = json.load(open(masks))
    net = tiny_vlm.TinyVLM()
    net.load_state_dict(torch.load(state))
    applied = quantlens_prune.apply_masks(net, doc)
    net.eval()
    quantlens_prune.finalize(net, restricted_norms=True)
    torch.onnx.export(net, args, wide, **kw)
    quantlens_prune.finalize(net)
    torch.onnx.export(net, args, final, **kw)
    # Training steps with the masks on: the parameters move, the removed ones stay zero once finalized.
    net = tiny_vlm.TinyVLM()
    net.load_state_dict(torch.load(state))
    quantlens_prune.apply_masks(net, doc)
    masks_of = {(p, n): quantlens_prune.mask_of(m, n) for p, m in net.named_modules() for n in ("weight", "bias") if quantlens_prune.mask_of(m, n) is not None}
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(2):
        logits = net(torch.randn(4, 3, 32, 32), torch.randint(0, tiny_vlm.VOCAB, (4, tiny_vlm.TEXT_LEN)))
        loss = logits.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    quantlens_prune.finalize(net)
    named = dict(net.named_modules())
    zeros_held = all(bool((getattr(named[p], n)[m == 0] == 0).all()) for (p, n), m in masks_of.items())
    before = tiny_vlm.TinyVLM()
    before.load_state_dict(torch.load(state))
    kept = masks_of[("language_model.model.norm", "weight")] == 1
    moved = float((named["language_model.model.norm"].weight - before.language_model.model.norm.weight)[kept].abs().max())
    print(json.dumps({"applied": len(applied), "norms": len(doc.get("norms", {})), "params": len(doc.get("params", {})), "masked": len(masks_of), "zerosHeld": zeros_held, "normScaleMoved": moved}))
else:
    state, masks, out = sys.argv[2:5]
    net = tiny_vlm.TinyVLM()
    net.load_state_dict(torch.load(state))
    applied = quantlens_prune.apply_masks(net, json.load(open(masks)))
    net.eval()
    quantlens_prune.finalize(net)
    torch.onnx.export(net, args, out, **kw)
    # Train with the masks on again: the removed weights must stay zero.
    net = tiny_vlm.TinyVLM()
    net.load_state_dict(torch.load(state))
    quantlens_prune.apply_masks(net, json.load(open(masks)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for step in range(3):
        pixels = torch.randn(4, 3, 32, 32)
        ids = torch.randint(0, tiny_vlm.VOCAB, (4, tiny_vlm.TEXT_LEN))
        logits = net(pixels, ids)
        loss = torch.nn.functional.cross_entropy(logits[:, -tiny_vlm.TEXT_LEN:].reshape(-1, tiny_vlm.VOCAB), torch.roll(ids, -1, dims=1).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    modules = dict(net.named_modules())
    masks_of = {p: quantlens_prune.mask_of(m) for p, m in modules.items() if quantlens_prune.mask_of(m) is not None}
    quantlens_prune.finalize(net)
    zeros_held = len(masks_of) == len(applied) and all(bool((modules[p].weight[m == 0] == 0).all()) for p, m in masks_of.items())
    mismatch = None
    try:
        quantlens_prune.apply_masks(tiny_vlm.TinyVLM().vision_model, json.load(open(masks)))
    except quantlens_prune.MaskMismatch as e:
        mismatch = str(e)
    print(json.dumps({"applied": len(applied), "zerosHeld": zeros_held, "losses": losses, "mismatch": mismatch}))
