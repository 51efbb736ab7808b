"""TinyVLM: the training code that the QuantLens sample model `tiny-vlm` comes from.

Module names match the ONNX export node names, e.g. `self.q_proj` in layer 0 of the vision encoder
is `/vision_model/encoder/layers.0/self_attn/q_proj/MatMul` in the graph and the dotted path
`vision_model.encoder.layers.0.self_attn.q_proj` in QuantLens reports. `quantlens fixture tiny-vlm`
builds the same architecture (with seeded weights) directly in ONNX.

Export:  python3 model.py tiny-vlm.onnx
"""
import math
import sys

import torch
from torch import nn
import torch.nn.functional as F

IMAGE, PATCH, CHANNELS = 32, 8, 3
VISION_DIM, VISION_HEADS, VISION_MLP, VISION_LAYERS = 64, 4, 128, 2
TEXT_DIM, TEXT_HEADS, TEXT_MLP, TEXT_LAYERS = 96, 4, 192, 2
VOCAB, TEXT_LEN = 128, 8


class Attention(nn.Module):
    def __init__(self, dim, heads, bias, out_name):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        # CLIP-style encoders call the output projection out_proj, LLaMA-style decoders o_proj.
        setattr(self, out_name, nn.Linear(dim, dim, bias=bias))
        self.out_name = out_name

    def forward(self, x, mask=None):
        b, s, d = x.shape
        split = lambda t: t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        return getattr(self, self.out_name)(out)


class VisionMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(VISION_DIM, VISION_MLP)
        self.activation_fn = nn.GELU()
        self.fc2 = nn.Linear(VISION_MLP, VISION_DIM)

    def forward(self, x):
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(VISION_DIM)
        self.self_attn = Attention(VISION_DIM, VISION_HEADS, bias=True, out_name="out_proj")
        self.layer_norm2 = nn.LayerNorm(VISION_DIM)
        self.mlp = VisionMLP()

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embedding = nn.Conv2d(CHANNELS, VISION_DIM, kernel_size=PATCH, stride=PATCH)
        self.position_embedding = nn.Embedding((IMAGE // PATCH) ** 2, VISION_DIM)

    def forward(self, pixel_values):
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        return x + self.position_embedding.weight


class VisionEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer() for _ in range(VISION_LAYERS)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class VisionModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = VisionEmbeddings()
        self.encoder = VisionEncoder()
        self.post_layernorm = nn.LayerNorm(VISION_DIM)

    def forward(self, pixel_values):
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))


class MultiModalProjector(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_1 = nn.Linear(VISION_DIM, TEXT_DIM)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(TEXT_DIM, TEXT_DIM)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class DecoderMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(TEXT_DIM, TEXT_MLP, bias=False)
        self.up_proj = nn.Linear(TEXT_DIM, TEXT_MLP, bias=False)
        self.down_proj = nn.Linear(TEXT_MLP, TEXT_DIM, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm(TEXT_DIM)
        self.self_attn = Attention(TEXT_DIM, TEXT_HEADS, bias=False, out_name="o_proj")
        self.post_attention_layernorm = RMSNorm(TEXT_DIM)
        self.mlp = DecoderMLP()

    def forward(self, x, mask):
        x = x + self.self_attn(self.input_layernorm(x), mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, TEXT_DIM)
        self.layers = nn.ModuleList([DecoderLayer() for _ in range(TEXT_LAYERS)])
        self.norm = RMSNorm(TEXT_DIM)

    def forward(self, image_features, input_ids):
        # Image features go first, then the text tokens, under one causal mask.
        h = torch.cat([image_features, self.embed_tokens(input_ids)], dim=1)
        s = h.shape[1]
        mask = torch.triu(torch.full((s, s), -1e4), diagonal=1)
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm(h)


class LanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = DecoderModel()
        self.lm_head = nn.Linear(TEXT_DIM, VOCAB, bias=False)

    def forward(self, image_features, input_ids):
        return self.lm_head(self.model(image_features, input_ids))


class TinyVLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision_model = VisionModel()
        self.multi_modal_projector = MultiModalProjector()
        self.language_model = LanguageModel()

    def forward(self, pixel_values, input_ids):
        image_features = self.multi_modal_projector(self.vision_model(pixel_values))
        return self.language_model(image_features, input_ids)


def export(path):
    model = TinyVLM().eval()
    pixels = torch.randn(1, CHANNELS, IMAGE, IMAGE)
    ids = torch.randint(0, VOCAB, (1, TEXT_LEN))
    torch.onnx.export(model, (pixels, ids), path, input_names=["pixel_values", "input_ids"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "input_ids": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17)


if __name__ == "__main__":
    export(sys.argv[1] if len(sys.argv) > 1 else "tiny-vlm.onnx")
