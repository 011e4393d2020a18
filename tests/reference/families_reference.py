#!/usr/bin/python3
"""NumPy references (float64) of the 2024 Llama-family architectures, written
from the semantics of transformers' modeling code, independent of the C++:

  llama3     LlamaForCausalLM, rope_scaling rope_type "llama3"
             (_compute_llama3_parameters), tied embeddings (Llama 3.2 1B/3B)
  qwen2      Qwen2ForCausalLM: q/k/v projections with biases, o without
  qwen3      Qwen3ForCausalLM: q_norm/k_norm (RMSNorm over head_dim) on each
             head of q and k before RoPE; head_dim * heads != hidden_size
  phi3       Phi3ForCausalLM: fused qkv_proj (rows q|k|v) and gate_up_proj
             (rows gate|up, chunk(2) of the output), sliding_window
  prosparse  SparseLlamaForCausalLM: hidden_act "fatrelu" (x if x >= t else 0,
             t = hidden_act_param), as ProSparse's modeling code writes it
  gemma2     Gemma2ForCausalLM: RMSNorm times (1 + w); embeddings times
             sqrt(hidden); input/post-attention/pre-FFN/post-FFN norms; scores
             scaled by query_pre_attn_scalar^-1/2 and soft-capped
             (cap * tanh(s / cap)), logits soft-capped; GeGLU with
             gelu_pytorch_tanh; the sliding window on layers with
             (l + 1) % 2 != 0; tied embeddings
  gemma3     Gemma3ForCausalLM: as Gemma 2 without soft-caps, with q_norm/k_norm
             ((1 + w) RMSNorm per head before RoPE), sliding layers every
             (l + 1) % sliding_window_pattern != 0, and those layers' RoPE base
             rope_local_base_freq (global layers: rope_theta)

The weights are not stored: both this script and the tests' fixture writer
(tests/testing/hf_fixture.cc) derive every element from its tensor's name,
so the checkpoint the test writes is the one computed here:

  h   = splitmix64(fnv1a64(name) + seed * 0x9E3779B97F4A7C15 + i)   (mod 2^64)
  u   = (h >> 40) / 2^24 - 0.5                                      (exact)
  w_i = float32(kind scale), computed in float64 and rounded to float32:
        norms      1 + u / 2
        biases     u / 4
        matrices   u * 2 / sqrt(columns)       (embeddings too)

Writes the configs, the token sequences and the logits at every position:

    tests/reference/families_reference.py > tests/testdata/families_reference.json
"""
import json
import math
import sys

import numpy as np

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def tensor(name, shape, seed):
    n = int(np.prod(shape))
    base = (fnv1a64(name) + seed * 0x9E3779B97F4A7C15) & M64
    u = np.array([(splitmix64((base + i) & M64) >> 40) / float(1 << 24) - 0.5 for i in range(n)])
    if name.endswith('norm.weight'):
        v = 1 + u / 2
    elif name.endswith('.bias'):
        v = u / 4
    else:
        v = u * 2 / math.sqrt(shape[-1])
    return v.astype(np.float32).astype(np.float64).reshape(shape)


def rmsnorm(x, w, eps):
    return w * x / np.sqrt(np.mean(x * x) + eps)


def inv_freq(c):
    hd = c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']
    theta = c.get('rope_theta', 10000.0)
    f = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    rs = c.get('rope_scaling')
    if rs and rs.get('rope_type', rs.get('type')) == 'llama3':
        factor, lo, hi = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor']
        old = rs['original_max_position_embeddings']
        low_wavelen, high_wavelen = old / lo, old / hi
        wavelen = 2 * math.pi / f
        scaled = np.where(wavelen > low_wavelen, f / factor, f)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        f = np.where(medium, smoothed, scaled)
    return f


def rope(x, pos, f):  # x: [heads, hd], rotate_half pairs (i, i + hd/2)
    half = x.shape[1] // 2
    c, s = np.cos(pos * f), np.sin(pos * f)
    a, b = x[:, :half], x[:, half:]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=1)


def act(c, z):
    a = c.get('hidden_activation') or c.get('hidden_act', 'silu')
    if a == 'silu':
        return z / (1 + np.exp(-z))
    if a == 'relu':
        return np.maximum(z, 0)
    if a == 'fatrelu':
        return np.where(z >= c['hidden_act_param'], z, 0.0)
    if a == 'gelu_pytorch_tanh':
        return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
    raise ValueError(a)


def tensors(c, seed):
    """Every tensor of the checkpoint, by Hugging Face name."""
    arch = c['architectures'][0]
    d, n, V, L = c['hidden_size'], c['intermediate_size'], c['vocab_size'], c['num_hidden_layers']
    H = c['num_attention_heads']
    KV = c.get('num_key_value_heads') or H
    hd = c.get('head_dim') or d // H
    shapes = {'model.embed_tokens.weight': (V, d), 'model.norm.weight': (d,)}
    if not c.get('tie_word_embeddings'):
        shapes['lm_head.weight'] = (V, d)
    for l in range(L):
        p = 'model.layers.%d.' % l
        shapes[p + 'input_layernorm.weight'] = (d,)
        shapes[p + 'post_attention_layernorm.weight'] = (d,)
        if arch.startswith('Gemma'):
            shapes[p + 'pre_feedforward_layernorm.weight'] = (d,)
            shapes[p + 'post_feedforward_layernorm.weight'] = (d,)
        shapes[p + 'self_attn.o_proj.weight'] = (d, H * hd)
        shapes[p + 'mlp.down_proj.weight'] = (d, n)
        if arch == 'Phi3ForCausalLM':
            shapes[p + 'self_attn.qkv_proj.weight'] = (H * hd + 2 * KV * hd, d)
            shapes[p + 'mlp.gate_up_proj.weight'] = (2 * n, d)
        else:
            shapes[p + 'self_attn.q_proj.weight'] = (H * hd, d)
            shapes[p + 'self_attn.k_proj.weight'] = (KV * hd, d)
            shapes[p + 'self_attn.v_proj.weight'] = (KV * hd, d)
            shapes[p + 'mlp.gate_proj.weight'] = (n, d)
            shapes[p + 'mlp.up_proj.weight'] = (n, d)
        if arch == 'Qwen2ForCausalLM':
            shapes[p + 'self_attn.q_proj.bias'] = (H * hd,)
            shapes[p + 'self_attn.k_proj.bias'] = (KV * hd,)
            shapes[p + 'self_attn.v_proj.bias'] = (KV * hd,)
        if arch in ('Qwen3ForCausalLM', 'Gemma3ForCausalLM'):
            shapes[p + 'self_attn.q_norm.weight'] = (hd,)
            shapes[p + 'self_attn.k_norm.weight'] = (hd,)
    return {name: tensor(name, s, seed) for name, s in shapes.items()}


def logits(c, seed, ids):
    w = tensors(c, seed)
    arch = c['architectures'][0]
    d, L, H = c['hidden_size'], c['num_hidden_layers'], c['num_attention_heads']
    KV = c.get('num_key_value_heads') or H
    hd = c.get('head_dim') or d // H
    n = c['intermediate_size']
    eps = c.get('rms_norm_eps', 1e-6)
    window = c.get('sliding_window') if arch == 'Phi3ForCausalLM' else None
    f = inv_freq(c)
    head = w['model.embed_tokens.weight'] if c.get('tie_word_embeddings') else w['lm_head.weight']
    keys = [[] for _ in range(L)]
    values = [[] for _ in range(L)]
    out = []
    for pos, tok in enumerate(ids):
        x = w['model.embed_tokens.weight'][tok].copy()
        for l in range(L):
            p = 'model.layers.%d.' % l
            xb = rmsnorm(x, w[p + 'input_layernorm.weight'], eps)
            if arch == 'Phi3ForCausalLM':
                qkv = w[p + 'self_attn.qkv_proj.weight'] @ xb
                q, k, v = qkv[:H * hd], qkv[H * hd:(H + KV) * hd], qkv[(H + KV) * hd:]
            else:
                q = w[p + 'self_attn.q_proj.weight'] @ xb
                k = w[p + 'self_attn.k_proj.weight'] @ xb
                v = w[p + 'self_attn.v_proj.weight'] @ xb
            if arch == 'Qwen2ForCausalLM':
                q = q + w[p + 'self_attn.q_proj.bias']
                k = k + w[p + 'self_attn.k_proj.bias']
                v = v + w[p + 'self_attn.v_proj.bias']
            q, k, v = q.reshape(H, hd), k.reshape(KV, hd), v.reshape(KV, hd)
            if arch == 'Qwen3ForCausalLM':
                q = np.stack([rmsnorm(h, w[p + 'self_attn.q_norm.weight'], eps) for h in q])
                k = np.stack([rmsnorm(h, w[p + 'self_attn.k_norm.weight'], eps) for h in k])
            q, k = rope(q, pos, f), rope(k, pos, f)
            keys[l].append(k)
            values[l].append(v)
            first = max(0, pos - window + 1) if window else 0
            K, Vv = np.stack(keys[l][first:]), np.stack(values[l][first:])  # [t, KV, hd]
            a = np.zeros((H, hd))
            for h in range(H):
                g = h // (H // KV)
                s = K[:, g, :] @ q[h] / math.sqrt(hd)
                e = np.exp(s - s.max())
                a[h] = (e / e.sum()) @ Vv[:, g, :]
            x = x + w[p + 'self_attn.o_proj.weight'] @ a.reshape(-1)
            xb = rmsnorm(x, w[p + 'post_attention_layernorm.weight'], eps)
            if arch == 'Phi3ForCausalLM':
                gu = w[p + 'mlp.gate_up_proj.weight'] @ xb
                gate, up = gu[:n], gu[n:]
            else:
                gate = w[p + 'mlp.gate_proj.weight'] @ xb
                up = w[p + 'mlp.up_proj.weight'] @ xb
            x = x + w[p + 'mlp.down_proj.weight'] @ (act(c, gate) * up)
        x = rmsnorm(x, w['model.norm.weight'], eps)
        out.append((head @ x).tolist())
    return out


def gemma_logits(c, seed, ids):
    w = tensors(c, seed)
    arch = c['architectures'][0]
    d, L, H = c['hidden_size'], c['num_hidden_layers'], c['num_attention_heads']
    KV, hd = c['num_key_value_heads'], c['head_dim']
    eps = c['rms_norm_eps']
    norm = lambda x, name: rmsnorm(x, 1 + w[name], eps)  # Gemma's (1 + weight)
    period = 2 if arch == 'Gemma2ForCausalLM' else c.get('sliding_window_pattern', 6)
    window = c['sliding_window']
    cap, final_cap = c.get('attn_logit_softcapping'), c.get('final_logit_softcapping')
    scale = c['query_pre_attn_scalar'] ** -0.5
    f_global = inv_freq(c)
    f_local = inv_freq(dict(c, rope_theta=c['rope_local_base_freq'], rope_scaling=None)) if 'rope_local_base_freq' in c else f_global
    E = w['model.embed_tokens.weight']
    keys, values, out = [[] for _ in range(L)], [[] for _ in range(L)], []
    for pos, tok in enumerate(ids):
        x = E[tok] * np.float32(math.sqrt(d))
        for l in range(L):
            p = 'model.layers.%d.' % l
            sliding = (l + 1) % period != 0
            xb = norm(x, p + 'input_layernorm.weight')
            q = (w[p + 'self_attn.q_proj.weight'] @ xb).reshape(H, hd)
            k = (w[p + 'self_attn.k_proj.weight'] @ xb).reshape(KV, hd)
            v = (w[p + 'self_attn.v_proj.weight'] @ xb).reshape(KV, hd)
            if arch == 'Gemma3ForCausalLM':
                q = np.stack([norm(h, p + 'self_attn.q_norm.weight') for h in q])
                k = np.stack([norm(h, p + 'self_attn.k_norm.weight') for h in k])
            f = f_local if sliding else f_global
            q, k = rope(q, pos, f), rope(k, pos, f)
            keys[l].append(k)
            values[l].append(v)
            first = max(0, pos - window + 1) if sliding else 0
            K, Vv = np.stack(keys[l][first:]), np.stack(values[l][first:])
            a = np.zeros((H, hd))
            for h in range(H):
                g = h // (H // KV)
                s = K[:, g, :] @ q[h] * scale
                if cap:
                    s = cap * np.tanh(s / cap)
                e = np.exp(s - s.max())
                a[h] = (e / e.sum()) @ Vv[:, g, :]
            x = x + norm(w[p + 'self_attn.o_proj.weight'] @ a.reshape(-1), p + 'post_attention_layernorm.weight')
            xb = norm(x, p + 'pre_feedforward_layernorm.weight')
            hmid = act(c, w[p + 'mlp.gate_proj.weight'] @ xb) * (w[p + 'mlp.up_proj.weight'] @ xb)
            x = x + norm(w[p + 'mlp.down_proj.weight'] @ hmid, p + 'post_feedforward_layernorm.weight')
        logits = E @ norm(x, 'model.norm.weight')
        if final_cap:
            logits = final_cap * np.tanh(logits / final_cap)
        out.append(logits.tolist())
    return out


def base(arch, **kw):
    c = {'architectures': [arch], 'hidden_size': 16, 'intermediate_size': 24, 'num_hidden_layers': 2,
         'num_attention_heads': 4, 'num_key_value_heads': 2, 'vocab_size': 32,
         'max_position_embeddings': 64, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
         'tie_word_embeddings': False, 'hidden_act': 'silu'}
    c.update(kw)
    return c


FIXTURES = {
    # Llama 3.2-style: rope_type llama3 with an original context small enough
    # that every band of the rule is hit by a 4-pair head; tied embeddings.
    'llama3': base('LlamaForCausalLM', rope_theta=500000.0, tie_word_embeddings=True,
                   rope_scaling={'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                                 'high_freq_factor': 4.0, 'original_max_position_embeddings': 32}),
    'qwen2': base('Qwen2ForCausalLM', rope_theta=1000000.0, tie_word_embeddings=True),
    'qwen3': base('Qwen3ForCausalLM', head_dim=8, rope_theta=1000000.0, attention_bias=False),
    'phi3': base('Phi3ForCausalLM', num_key_value_heads=4, sliding_window=5),
    'prosparse': base('SparseLlamaForCausalLM', num_key_value_heads=4, hidden_act='fatrelu',
                      hidden_act_param=0.1),
    # Small caps and window so that each feature moves these tiny logits.
    'gemma2': base('Gemma2ForCausalLM', head_dim=8, query_pre_attn_scalar=12, tie_word_embeddings=True,
                   hidden_act='gelu_pytorch_tanh', hidden_activation='gelu_pytorch_tanh', rms_norm_eps=1e-6,
                   attn_logit_softcapping=0.5, final_logit_softcapping=1.5, sliding_window=3),
    'gemma3': base('Gemma3ForCausalLM', head_dim=8, query_pre_attn_scalar=8, tie_word_embeddings=True,
                   hidden_act='gelu_pytorch_tanh', hidden_activation='gelu_pytorch_tanh', rms_norm_eps=1e-6,
                   sliding_window=3, sliding_window_pattern=2, rope_theta=1000000.0,
                   rope_local_base_freq=10000.0, attn_logit_softcapping=None, final_logit_softcapping=None),
}
SEQUENCES = [[1, 5, 9, 2, 31, 7, 7, 0, 18, 3, 22, 11],
             [4, 4, 4, 30, 12, 6, 1, 25, 9, 14]]
SEED = 7

if __name__ == '__main__':
    out = {'source': 'tests/reference/families_reference.py', 'seed': SEED, 'sequences': SEQUENCES,
           'models': {}}
    for name, c in FIXTURES.items():
        f = gemma_logits if c['architectures'][0].startswith('Gemma') else logits
        out['models'][name] = {'config': c, 'logits': [f(c, SEED, s) for s in SEQUENCES]}
        print(name, 'done', file=sys.stderr)
    print(json.dumps(out))
