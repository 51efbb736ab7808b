"""Small versions of common architectures, written here and exported by torch.onnx, for
test/unit/prune-torch-exports.test.ts: what a real exporter writes (BatchNorm folded into convs, ReLU6 as
Clip, hardswish, squeeze-excite, torch.chunk as Slices with computed bounds, a fused q/k/v Linear reshaped
into heads, a class token expanded with expand(B, -1, -1), nearest Upsample by scale, GroupNorm as torch
exports it, grouped convolutions, ShuffleNetV2's channel shuffle).
  torch_models.py OUT_DIR   writes resnet.onnx, mobilenet.onnx, vit.onnx, yolo.onnx, unet.onnx, resnext.onnx,
  shufflenet.onnx; prints one JSON line
Random weights, with BatchNorm statistics spread out so that folding them matters."""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.shufflenetv2 import ShuffleNetV2  # channel_shuffle: view as [N, 2, C/2, H, W], transpose, view back

torch.manual_seed(0)


class Basic(nn.Module):

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x))); y = self.b2(self.c2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.layers = nn.Sequential(Basic(32, 32, 1), Basic(32, 64, 2), Basic(64, 128, 2))
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class IR(nn.Module):

    def __init__(self, cin, cout, stride, t=4):
        super().__init__(); h = cin * t
        self.use = stride == 1 and cin == cout
        self.conv = nn.Sequential(nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(), nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(), nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.use else self.conv(x)


class SE(nn.Module):

    def __init__(self, c): super().__init__(); self.fc1 = nn.Conv2d(c, c // 4, 1); self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class MobileNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(IR(16, 16, 1), IR(16, 24, 2), IR(24, 24, 1), SE(24), IR(24, 40, 2))
        self.head = nn.Linear(40, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class ViTBlock(nn.Module):

    def __init__(self, d, h):
        super().__init__(); self.h = h
        self.norm1 = nn.LayerNorm(d); self.qkv = nn.Linear(d, 3 * d); self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d); self.fc1 = nn.Linear(d, 4 * d); self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, self.h, C // self.h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1) * (C // self.h) ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(B, N, C))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):

    def __init__(self, d=64):
        super().__init__()
        self.patch = nn.Conv2d(3, d, 8, 8); self.cls = nn.Parameter(torch.randn(1, 1, d)); self.pos = nn.Parameter(torch.randn(1, 17, d))
        self.blocks = nn.Sequential(ViTBlock(d, 4), ViTBlock(d, 4)); self.norm = nn.LayerNorm(d); self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class C2f(nn.Module):

    def __init__(self, c):
        super().__init__(); self.cv1 = nn.Conv2d(c, 2 * (c // 2), 1); self.m = nn.Conv2d(c // 2, c // 2, 3, 1, 1); self.cv2 = nn.Conv2d(3 * (c // 2), c, 1)

    def forward(self, x):
        y = list(F.silu(self.cv1(x)).chunk(2, 1)); y.append(F.silu(self.m(y[-1])))
        return F.silu(self.cv2(torch.cat(y, 1)))


class Yolo(nn.Module):

    def __init__(self):
        super().__init__(); self.stem = nn.Conv2d(3, 32, 3, 2, 1); self.c2f = C2f(32); self.down = nn.Conv2d(32, 64, 3, 2, 1); self.c2f2 = C2f(64)
        self.up = nn.Upsample(scale_factor=2, mode='nearest'); self.fuse = C2f(96); self.det = nn.Conv2d(96, 18, 1)

    def forward(self, x):
        a = self.c2f(F.silu(self.stem(x))); b = self.c2f2(F.silu(self.down(a)))
        return self.det(self.fuse(torch.cat([a, self.up(b)], 1)))

class XBlock(nn.Module):
    # ResNeXt/RegNet's bottleneck: 1x1, a grouped 3x3 (groups of 8 channels), squeeze-excite, 1x1, residual.

    def __init__(self, c, mid, stride):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid // 8, bias=False), nn.BatchNorm2d(mid), nn.ReLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, mid // 4, 1), nn.ReLU(), nn.Conv2d(mid // 4, mid, 1), nn.Sigmoid())
        self.c = nn.Sequential(nn.Conv2d(mid, c, 1, bias=False), nn.BatchNorm2d(c))
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()

    def forward(self, x):
        y = self.b(self.a(x))
        return F.relu(self.pool(x) + self.c(y * self.se(y)))


class ResNeXt(nn.Module):

    def __init__(self):
        super().__init__(); self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.blocks = nn.Sequential(XBlock(32, 64, 1), XBlock(32, 64, 2), XBlock(32, 64, 1)); self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class GNBlock(nn.Module):
    # A diffusion UNet's residual block: GroupNorm (exported as Reshape, InstanceNormalization, Reshape back
    # to Shape(x)), SiLU, conv, twice, with a 1x1 skip when the width changes.

    def __init__(self, cin, cout):
        super().__init__(); self.n1 = nn.GroupNorm(16, cin); self.c1 = nn.Conv2d(cin, cout, 3, 1, 1); self.n2 = nn.GroupNorm(16, cout); self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.skip(x) + self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x))))))


class SelfAttention2D(nn.Module):
    # diffusers' Transformer2D block, self-attention only: GroupNorm, proj_in, LayerNorm, to_q/to_k/to_v
    # (heads by reshape, scores by baddbmm over torch.empty: a ConstantOfShape sized from q), to_out, a
    # GEGLU feed-forward (chunk), proj_out.

    def __init__(self, c, heads=4):
        super().__init__(); self.heads = heads; self.norm = nn.GroupNorm(16, c); self.proj_in = nn.Conv2d(c, c, 1); self.ln1 = nn.LayerNorm(c)
        self.to_q = nn.Linear(c, c, bias=False); self.to_k = nn.Linear(c, c, bias=False); self.to_v = nn.Linear(c, c, bias=False); self.to_out = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c); self.geglu = nn.Linear(c, 4 * c); self.ff_out = nn.Linear(2 * c, c); self.proj_out = nn.Conv2d(c, c, 1)

    def heads_first(self, t):
        b, n, d = t.shape
        return t.reshape(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, n, d // self.heads)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        z = self.ln1(y); q, k, v = self.heads_first(self.to_q(z)), self.heads_first(self.to_k(z)), self.heads_first(self.to_v(z))
        a = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype), q, k.transpose(-1, -2), beta=0, alpha=q.shape[-1] ** -0.5).softmax(-1)
        o = torch.bmm(a, v); o = o.reshape(b, self.heads, h * w, -1).permute(0, 2, 1, 3).reshape(b, h * w, c)
        y = self.to_out(o) + y
        g, gate = self.geglu(self.ln2(y)).chunk(2, dim=-1); y = self.ff_out(g * F.gelu(gate)) + y
        return x + self.proj_out(y.reshape(b, h, w, c).permute(0, 3, 1, 2))


class UNet(nn.Module):
    # The skip concat's GroupNorm groups (8 channels) start on the concat's boundary and hold whole groups of
    # the halves' own norms (4 channels), so its channel sets stay small.

    def __init__(self):
        super().__init__(); self.stem = nn.Conv2d(3, 64, 3, 1, 1); self.b1 = GNBlock(64, 64); self.down = nn.Conv2d(64, 64, 3, 2, 1); self.b2 = GNBlock(64, 64); self.attn = SelfAttention2D(64)
        self.up = nn.Upsample(scale_factor=2, mode='nearest'); self.b3 = GNBlock(128, 64); self.out = nn.Sequential(nn.GroupNorm(16, 64), nn.SiLU(), nn.Conv2d(64, 3, 3, 1, 1))

    def forward(self, x):
        a = self.b1(self.stem(x)); b = self.attn(self.b2(self.down(a)))
        return self.out(self.b3(torch.cat([a, self.up(b)], 1)))

out = sys.argv[1]
written = {}
for name, m, shape in [("resnet", ResNet(), (1, 3, 64, 64)), ("mobilenet", MobileNet(), (1, 3, 64, 64)), ("vit", ViT(), (1, 3, 32, 32)), ("yolo", Yolo(), (1, 3, 64, 64)), ("unet", UNet(), (1, 3, 32, 32)), ("resnext", ResNeXt(), (1, 3, 64, 64)), ("shufflenet", ShuffleNetV2([2, 2, 1], [16, 32, 64, 128, 256]), (1, 3, 64, 64))]:
    m.eval()
    for p in m.modules():
        if isinstance(p, nn.GroupNorm):
            p.weight.data.uniform_(0.5, 1.5)
            p.bias.data.uniform_(-0.3, 0.3)
        if isinstance(p, nn.BatchNorm2d):
            p.running_mean.uniform_(-0.2, 0.2)
            p.running_var.uniform_(0.5, 1.5)
            p.weight.data.uniform_(0.5, 1.5)
            p.bias.data.uniform_(-0.3, 0.3)
    file = os.path.join(out, name + ".onnx")
    torch.onnx.export(m, torch.randn(*shape), file, input_names=["x"], output_names=["y"], opset_version=14, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    written[name] = file
print(json.dumps(written))
