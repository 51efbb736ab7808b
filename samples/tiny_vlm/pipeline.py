"""TinyLLaVA: a LLaVA-style pipeline with a KV-cache decoder, trained on a toy captioning task and
exported as people deploy VLMs: a folder of ONNX files.

  vision_encoder.onnx   pixel_values [batch, 3, 32, 32] -> image_features [batch, 16, 96]
                        (vision_model + multi_modal_projector, the modules of model.py)
  embed_tokens.onnx     input_ids [batch, sequence_length] -> inputs_embeds [batch, sequence_length, 96]
  decoder_model_merged.onnx
                        inputs_embeds, attention_mask [batch, total_sequence_length],
                        position_ids [batch, sequence_length],
                        past_key_values.N.key/value [batch, 4, past_sequence_length, 24]
                        -> logits, present.N.key/value [batch, 4, total_sequence_length, 24]
                        (one graph for prefill and decode: the past is empty at prefill, as
                        onnxruntime-genai runs it)
  genai_config.json     onnxruntime-genai's description of the three (vision, embedding, decoder)
  config.json, generation_config.json, preprocessor_config.json

The task: a 32x32 image holds one coloured square in one quadrant, on noise. After the image and the
prompt tokens [PROMPT_A, PROMPT_B] the model answers [colour, quadrant, EOS]. Trained for a few hundred
steps with a fixed seed: greedy decoding then answers correctly, so generation is a real metric.

  python3 pipeline.py OUT_DIR [--steps 150] [--data DATA_DIR] [--split-decoder]
--split-decoder also writes Optimum's pair, onnx/decoder_model.onnx (no cache) and decoder_with_past_model.onnx.
DATA_DIR gets held-apart images and prompts as .npy (calib/ and eval/, disjoint seeds) and answers.json.
"""
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import CHANNELS, IMAGE, PATCH, TEXT_DIM, TEXT_HEADS, TEXT_LAYERS, VOCAB, DecoderMLP, MultiModalProjector, RMSNorm, VisionModel  # noqa: E402

COLOURS = {'red': (1.0, -1.0, -1.0), 'green': (-1.0, 1.0, -1.0), 'blue': (-1.0, -1.0, 1.0), 'white': (1.0, 1.0, 1.0)}
COLOUR_TOKENS = {name: 20 + i for i, name in enumerate(COLOURS)}
QUADRANT_TOKENS = [30, 31, 32, 33]
PROMPT = [10, 11]
EOS = 2
MAX_POSITIONS = 64
HEAD_DIM = TEXT_DIM // TEXT_HEADS


def make_example(rng):
    """One image (noise plus a coloured 12x12 square in a quadrant) and its answer tokens."""
    img = rng.normal(0, 0.3, (CHANNELS, IMAGE, IMAGE)).astype(np.float32)
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    q = int(rng.integers(4))
    y0, x0 = (q // 2) * 16 + int(rng.integers(0, 4)), (q % 2) * 16 + int(rng.integers(0, 4))
    for c, v in enumerate(COLOURS[colour]):
        img[c, y0:y0 + 12, x0:x0 + 12] = v + rng.normal(0, 0.1, (12, 12))
    return img, [COLOUR_TOKENS[colour], QUADRANT_TOKENS[q], EOS]


class CachedAttention(nn.Module):
    """LLaMA-style attention (q/k/v/o_proj, no bias) that takes and returns its key/value cache."""

    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(TEXT_DIM, TEXT_DIM, bias=False)
        self.k_proj = nn.Linear(TEXT_DIM, TEXT_DIM, bias=False)
        self.v_proj = nn.Linear(TEXT_DIM, TEXT_DIM, bias=False)
        self.o_proj = nn.Linear(TEXT_DIM, TEXT_DIM, bias=False)

    def forward(self, x, bias, past_k, past_v):
        b, s, d = x.shape
        split = lambda t: t.reshape(b, s, TEXT_HEADS, HEAD_DIM).transpose(1, 2)
        q = split(self.q_proj(x))
        k = torch.cat([past_k, split(self.k_proj(x))], dim=2)
        v = torch.cat([past_v, split(self.v_proj(x))], dim=2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(HEAD_DIM) + bias
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        return self.o_proj(out), k, v


class CachedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm(TEXT_DIM)
        self.self_attn = CachedAttention()
        self.post_attention_layernorm = RMSNorm(TEXT_DIM)
        self.mlp = DecoderMLP()

    def forward(self, x, bias, past_k, past_v):
        a, k, v = self.self_attn(self.input_layernorm(x), bias, past_k, past_v)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class CachedDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, TEXT_DIM)
        self.embed_positions = nn.Embedding(MAX_POSITIONS, TEXT_DIM)
        self.layers = nn.ModuleList([CachedLayer() for _ in range(TEXT_LAYERS)])
        self.norm = RMSNorm(TEXT_DIM)

    def forward(self, inputs_embeds, bias, position_ids, past):
        h = inputs_embeds + self.embed_positions(position_ids)
        present = []
        for i, layer in enumerate(self.layers):
            h, k, v = layer(h, bias, past[2 * i], past[2 * i + 1])
            present += [k, v]
        return self.norm(h), present


class LanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = CachedDecoder()
        self.lm_head = nn.Linear(TEXT_DIM, VOCAB, bias=False)

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        """past: key, value per layer ([b, heads, past, head_dim]); returns logits and the new cache."""
        s = inputs_embeds.shape[1]
        total = attention_mask.shape[1]
        # Query i sits at absolute position total - s + i: it sees keys up to there, and no padding.
        q_pos = torch.arange(s).unsqueeze(1) + (total - s)
        causal = torch.arange(total).unsqueeze(0) <= q_pos
        allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] > 0)
        bias = torch.where(allowed, torch.zeros(()), torch.full((), -1e4))
        h, present = self.model(inputs_embeds, bias, position_ids, past)
        return (self.lm_head(h), *present)


class TinyLLaVA(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision_model = VisionModel()
        self.multi_modal_projector = MultiModalProjector()
        self.language_model = LanguageModel()

    def image_features(self, pixel_values):
        return self.multi_modal_projector(self.vision_model(pixel_values))

    def sequence(self, pixel_values, ids):
        """Image features, then the token embeddings: what the decoder's prefill sees."""
        return torch.cat([self.image_features(pixel_values), self.language_model.model.embed_tokens(ids)], dim=1)


def empty_past(b):
    return [torch.zeros(b, TEXT_HEADS, 0, HEAD_DIM) for _ in range(2 * TEXT_LAYERS)]


def train(steps, seed=0):
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TinyLLaVA()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loss = float('nan')
    for _ in range(steps):
        batch = [make_example(rng) for _ in range(16)]
        pixels = torch.tensor(np.stack([b[0] for b in batch]))
        answers = torch.tensor([b[1] for b in batch])
        ids = torch.cat([torch.tensor(PROMPT).expand(len(batch), -1), answers[:, :-1]], dim=1)
        x = model.sequence(pixels, ids)
        n = x.shape[1]
        mask = torch.ones(len(batch), n, dtype=torch.int64)
        pos = torch.arange(n).expand(len(batch), -1)
        logits = model.language_model(x, mask, pos, *empty_past(len(batch)))[0]
        # The answer tokens follow the last prompt token: predict them at its position and after.
        pred = logits[:, -answers.shape[1]:, :]
        loss = nn.functional.cross_entropy(pred.reshape(-1, VOCAB), answers.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), float(loss)


def export(model, out, split=False):
    os.makedirs(os.path.join(out, 'onnx'), exist_ok=True)
    pixels = torch.randn(1, CHANNELS, IMAGE, IMAGE)
    opset = 17
    torch.onnx.export(_Vision(model), (pixels,), os.path.join(out, 'onnx', 'vision_encoder.onnx'), input_names=['pixel_values'], output_names=['image_features'],
                      dynamic_axes={'pixel_values': {0: 'batch_size'}, 'image_features': {0: 'batch_size'}}, opset_version=opset)
    ids = torch.tensor([PROMPT])
    torch.onnx.export(_Embed(model), (ids,), os.path.join(out, 'onnx', 'embed_tokens.onnx'), input_names=['input_ids'], output_names=['inputs_embeds'],
                      dynamic_axes={'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'inputs_embeds': {0: 'batch_size', 1: 'sequence_length'}}, opset_version=opset)
    # Traced at a decode step (past 3, one new token) so no size is baked in; prefill runs it with an empty past.
    past = [torch.randn(1, TEXT_HEADS, 3, HEAD_DIM) for _ in range(2 * TEXT_LAYERS)]
    names = [f'past_key_values.{i}.{kv}' for i in range(TEXT_LAYERS) for kv in ('key', 'value')]
    present = [f'present.{i}.{kv}' for i in range(TEXT_LAYERS) for kv in ('key', 'value')]
    axes = {'inputs_embeds': {0: 'batch_size', 1: 'sequence_length'}, 'attention_mask': {0: 'batch_size', 1: 'total_sequence_length'},
            'position_ids': {0: 'batch_size', 1: 'sequence_length'}, 'logits': {0: 'batch_size', 1: 'sequence_length'}}
    axes.update({n: {0: 'batch_size', 2: 'past_sequence_length'} for n in names})
    axes.update({n: {0: 'batch_size', 2: 'total_sequence_length'} for n in present})
    torch.onnx.export(model.language_model, (torch.randn(1, 1, TEXT_DIM), torch.ones(1, 4, dtype=torch.int64), torch.tensor([[3]]), *past),
                      os.path.join(out, 'onnx', 'decoder_model_merged.onnx'), input_names=['inputs_embeds', 'attention_mask', 'position_ids', *names],
                      output_names=['logits', *present], dynamic_axes=axes, opset_version=opset)
    if split:
        # Optimum's pair: the first step without a cache, the later ones with it (QuantLens merges them
        # into decoder_model_merged.onnx with an If on use_cache_branch, as Optimum does).
        torch.onnx.export(_NoPast(model.language_model), (torch.randn(1, 5, TEXT_DIM), torch.ones(1, 5, dtype=torch.int64), torch.arange(5)[None]),
                          os.path.join(out, 'onnx', 'decoder_model.onnx'), input_names=['inputs_embeds', 'attention_mask', 'position_ids'],
                          output_names=['logits', *present], dynamic_axes={**{k: v for k, v in axes.items() if k not in names}}, opset_version=opset)
        torch.onnx.export(model.language_model, (torch.randn(1, 1, TEXT_DIM), torch.ones(1, 4, dtype=torch.int64), torch.tensor([[3]]), *past),
                          os.path.join(out, 'onnx', 'decoder_with_past_model.onnx'), input_names=['inputs_embeds', 'attention_mask', 'position_ids', *names],
                          output_names=['logits', *present], dynamic_axes=axes, opset_version=opset)
    image_tokens = (IMAGE // PATCH) ** 2
    config = {'model_type': 'llava', 'architectures': ['TinyLLaVA'], 'image_token_count': image_tokens, 'vocab_size': VOCAB,
              'text_config': {'hidden_size': TEXT_DIM, 'num_attention_heads': TEXT_HEADS, 'num_hidden_layers': TEXT_LAYERS, 'max_position_embeddings': MAX_POSITIONS},
              'quantlens': {'image_position': 'before_prompt', 'prompt': PROMPT}}
    write_json(os.path.join(out, 'config.json'), config)
    write_json(os.path.join(out, 'generation_config.json'), {'eos_token_id': EOS, 'max_new_tokens': 3, 'do_sample': False})
    write_json(os.path.join(out, 'preprocessor_config.json'), {'image_size': IMAGE, 'image_mean': [0, 0, 0], 'image_std': [1, 1, 1]})
    write_json(os.path.join(out, 'tokenizer.json'), tokenizer_json())
    write_json(os.path.join(out, 'tokenizer_config.json'), {'tokenizer_class': 'PreTrainedTokenizerFast', 'eos_token': '</s>', 'unk_token': '<unk>'})
    write_json(os.path.join(out, 'genai_config.json'), {'model': {
        'type': 'llava', 'vocab_size': VOCAB, 'eos_token_id': EOS, 'context_length': MAX_POSITIONS,
        'vision': {'filename': 'onnx/vision_encoder.onnx', 'inputs': {'pixel_values': 'pixel_values'}, 'outputs': {'image_features': 'image_features'}},
        'embedding': {'filename': 'onnx/embed_tokens.onnx', 'inputs': {'input_ids': 'input_ids'}, 'outputs': {'inputs_embeds': 'inputs_embeds'}},
        'decoder': {'filename': 'onnx/decoder_model_merged.onnx', 'head_size': HEAD_DIM, 'hidden_size': TEXT_DIM, 'num_attention_heads': TEXT_HEADS,
                    'num_key_value_heads': TEXT_HEADS, 'num_hidden_layers': TEXT_LAYERS,
                    'inputs': {'inputs_embeds': 'inputs_embeds', 'attention_mask': 'attention_mask', 'position_ids': 'position_ids',
                               'past_key_names': 'past_key_values.%d.key', 'past_value_names': 'past_key_values.%d.value'},
                    'outputs': {'logits': 'logits', 'present_key_names': 'present.%d.key', 'present_value_names': 'present.%d.value'}}},
        'search': {'do_sample': False, 'max_length': MAX_POSITIONS}})


class _Vision(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.vision_model, self.multi_modal_projector = m.vision_model, m.multi_modal_projector

    def forward(self, pixel_values):
        return self.multi_modal_projector(self.vision_model(pixel_values))


class _NoPast(nn.Module):
    """The decoder's first step: no cache comes in (an empty one inside), the new one goes out."""

    def __init__(self, lm):
        super().__init__()
        # The language model's own modules under the same names: both exports' nodes carry the same module paths.
        self.model, self.lm_head = lm.model, lm.lm_head

    def forward(self, inputs_embeds, attention_mask, position_ids):
        b = inputs_embeds.shape[0]
        return LanguageModel.forward(self, inputs_embeds, attention_mask, position_ids, *[torch.zeros(b, TEXT_HEADS, 0, HEAD_DIM) for _ in range(2 * TEXT_LAYERS)])


class _Embed(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.embed_tokens = m.language_model.model.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


def tokenizer_json():
    """A word-level Hugging Face tokenizer.json for the toy vocabulary: the prompt asks for the colour and the
    place of the square; the answers are colour and quadrant words."""
    words = {i: f'<t{i}>' for i in range(VOCAB)}
    words.update({0: '<unk>', EOS: '</s>', PROMPT[0]: 'colour', PROMPT[1]: 'place'})
    words.update({token: name for name, token in COLOUR_TOKENS.items()})
    words.update(zip(QUADRANT_TOKENS, ['top-left', 'top-right', 'bottom-left', 'bottom-right']))
    special = [{'id': i, 'content': words[i], 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True} for i in (0, EOS)]
    return {'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': special, 'normalizer': None,
            'pre_tokenizer': {'type': 'WhitespaceSplit'}, 'post_processor': None, 'decoder': None,
            'model': {'type': 'WordLevel', 'vocab': {w: i for i, w in words.items()}, 'unk_token': '<unk>'}}


def write_json(path, value):
    with open(path, 'w') as f:
        json.dump(value, f, indent=2)


def greedy(model, pixels, steps=3):
    """The reference generation in PyTorch: prefill, then one token at a time with the cache."""
    with torch.no_grad():
        x = model.sequence(pixels, torch.tensor([PROMPT]))
        n = x.shape[1]
        out = model.language_model(x, torch.ones(1, n, dtype=torch.int64), torch.arange(n)[None], *empty_past(1))
        tokens = []
        for _ in range(steps):
            t = int(out[0][0, -1].argmax())
            tokens.append(t)
            if t == EOS:
                break
            n += 1
            out = model.language_model(model.language_model.model.embed_tokens(torch.tensor([[t]])), torch.ones(1, n, dtype=torch.int64), torch.tensor([[n - 1]]), *out[1:])
        return tokens


def write_data(model, folder, seed, count):
    """Images (pixel_values_N.npy), the prompt (input_ids.npy) and the float model's answers."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth, generated = [], []
    for i in range(count):
        img, answer = make_example(rng)
        np.save(os.path.join(folder, f'pixel_values_{i}.npy'), img[None])
        truth.append(answer)
        generated.append(greedy(model, torch.tensor(img[None])))
    np.save(os.path.join(folder, 'input_ids.npy'), np.array([PROMPT], dtype=np.int64))
    write_json(os.path.join(folder, 'answers.json'), {'truth': truth, 'pytorch': generated})
    return sum(t == g for t, g in zip(truth, generated))


if __name__ == '__main__':
    args = sys.argv[1:]
    out = args[0] if args else 'tiny-llava'
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 150
    model, loss = train(steps)
    export(model, out, split='--split-decoder' in args)
    line = f'trained {steps} steps (loss {loss:.4f}); exported to {out}'
    if '--data' in args:
        data = args[args.index('--data') + 1]
        ok = write_data(model, os.path.join(data, 'eval'), 2000, 24)
        write_data(model, os.path.join(data, 'calib'), 1000, 16)
        line += f'; {ok}/24 held-apart answers right in PyTorch'
    print(line)
