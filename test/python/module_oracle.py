"""Real model code exported by torch.onnx, each beside its own named_modules(): the oracle for
test/unit/module-path-oracle.test.ts (every weight-bearing ONNX node must map to the module that owns its
weight). torchvision's own architectures (small configurations of ViT, Swin and ConvNeXt keep the files
small; the code is torchvision's) and HF-style decoder code written here.
  module_oracle.py OUT_DIR   writes NAME.onnx and NAME.modules.json per model; prints one JSON line
  (name -> {opset, folding}) or {name: {error}} for an export this torch cannot do."""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

torch.manual_seed(0)


class Attention(nn.Module):

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d); self.k_proj = nn.Linear(d, d); self.v_proj = nn.Linear(d, d); self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        a = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, -1) @ v
        return self.o_proj(a.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):

    def __init__(self, d, h):
        super().__init__(); self.gate_proj = nn.Linear(d, h, bias=False); self.up_proj = nn.Linear(d, h, bias=False); self.down_proj = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):

    def __init__(self, d):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(d); self.self_attn = Attention(d, 4)
        self.post_attention_layernorm = nn.LayerNorm(d); self.mlp = MLP(d, 2 * d)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Projector(nn.Module):

    def __init__(self, vd, d):
        super().__init__(); self.linear_1 = nn.Linear(vd, d); self.act = nn.GELU(); self.linear_2 = nn.Linear(d, d)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class TinyLlava(nn.Module):
    """HF-style names: embed_tokens, layers (a ModuleList), self_attn.q_proj, mlp.gate_proj, multi_modal_projector.linear_1."""

    def __init__(self, d=32, vocab=64, vd=24):
        super().__init__()
        self.multi_modal_projector = Projector(vd, d)
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([DecoderLayer(d) for _ in range(2)])
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, image_features, input_ids):
        x = torch.cat([self.multi_modal_projector(image_features), self.embed_tokens(input_ids)], 1)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def models():
    img = lambda s: (torch.randn(1, 3, s, s),)
    yield 'resnet18', torchvision.models.resnet18(), img(64), 13, True
    yield 'mobilenet_v3_small', torchvision.models.mobilenet_v3_small(), img(64), 17, True
    yield 'efficientnet_b0', torchvision.models.efficientnet_b0(), img(64), 13, False
    yield 'vit', VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10), img(32), 14, True
    # Swin's attention calls F.linear(x, self.qkv.weight): without folding the weight keeps its name.
    yield 'swin', SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4], num_classes=10), img(32), 17, False
    yield 'convnext', ConvNeXt(block_setting=[CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 2)], num_classes=10), img(32), 13, False
    yield 'tiny_llava', TinyLlava(), (torch.randn(1, 4, 24), torch.randint(0, 64, (1, 6))), 17, True


def modules(m):
    """named_modules() with each module's class and the shapes of the weights it owns directly."""
    out = {}
    for name, mod in m.named_modules():
        own = {k: list(p.shape) for k, p in mod.named_parameters(recurse=False)}
        if own:
            out[name] = {'cls': type(mod).__name__, 'params': own}
    return out


def main(out_dir):
    done = {}
    for name, m, args, opset, folding in models():
        m.eval()
        path = os.path.join(out_dir, name + '.onnx')
        try:
            # With gradients on, nn.MultiheadAttention takes its exportable path (the fused fast path has no ONNX form).
            torch.onnx.export(m, args, path, opset_version=opset, do_constant_folding=folding)
        except Exception as e:  # an export this torch cannot do is reported, not fatal
            done[name] = {'error': str(e).split('\n')[0][:200]}
            continue
        with open(os.path.join(out_dir, name + '.modules.json'), 'w') as f:
            json.dump(modules(m), f)
        done[name] = {'opset': opset, 'folding': folding}
    print(json.dumps(done))


if __name__ == '__main__':
    main(sys.argv[1])
