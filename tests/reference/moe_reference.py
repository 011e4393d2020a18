#!/usr/bin/python3
"""NumPy references (float64) of the mixture-of-experts architectures, written
from the semantics of transformers' modeling code, independent of the C++:

  mixtral    MixtralForCausalLM (MixtralSparseMoeBlock): router logits
             block_sparse_moe.gate @ x, softmax over every expert, the top_k
             (num_experts_per_tok) most probable, their probabilities divided
             by their sum; each chosen expert is a SwiGLU FFN
             w2 @ (silu(w1 @ x) * (w3 @ x)), the outputs weighted and added.
             Llama attention with Mistral's sliding_window.
  qwen3moe   Qwen3MoeForCausalLM (Qwen3MoeSparseMoeBlock): router mlp.gate,
             softmax, top_k, renormalised only when norm_topk_prob; experts
             mlp.experts.E.{gate,up,down}_proj of moe_intermediate_size;
             Qwen3's attention (q_norm/k_norm per head before RoPE).

Weights come from each tensor's name exactly as in families_reference.py
(the rule is documented there; tests/testing/hf_fixture.cc writes the same
checkpoint). Routing is a discrete choice: the script checks that at every
position and layer the k-th and (k+1)-th probabilities differ by at least
1e-4, so float32 rounding in the C++ cannot pick other experts.

    tests/reference/moe_reference.py > tests/testdata/moe_reference.json
"""
import json
import math
import sys

import numpy as np

from families_reference import SEQUENCES, act, inv_freq, rmsnorm, rope, tensor

MARGIN = 1e-4


def names(c):
    """Every tensor of the checkpoint, by Hugging Face name, with its shape."""
    arch = c['architectures'][0]
    d, V, L, H = c['hidden_size'], c['vocab_size'], c['num_hidden_layers'], c['num_attention_heads']
    KV = c.get('num_key_value_heads') or H
    hd = c.get('head_dim') or d // H
    mixtral = arch == 'MixtralForCausalLM'
    E = c['num_local_experts'] if mixtral else c['num_experts']
    F = c['intermediate_size'] if mixtral else c['moe_intermediate_size']
    shapes = {'model.embed_tokens.weight': (V, d), 'model.norm.weight': (d,)}
    if not c.get('tie_word_embeddings'):
        shapes['lm_head.weight'] = (V, d)
    for l in range(L):
        p = 'model.layers.%d.' % l
        shapes[p + 'input_layernorm.weight'] = (d,)
        shapes[p + 'post_attention_layernorm.weight'] = (d,)
        shapes[p + 'self_attn.q_proj.weight'] = (H * hd, d)
        shapes[p + 'self_attn.k_proj.weight'] = (KV * hd, d)
        shapes[p + 'self_attn.v_proj.weight'] = (KV * hd, d)
        shapes[p + 'self_attn.o_proj.weight'] = (d, H * hd)
        if not mixtral:
            shapes[p + 'self_attn.q_norm.weight'] = (hd,)
            shapes[p + 'self_attn.k_norm.weight'] = (hd,)
        moe = p + ('block_sparse_moe.' if mixtral else 'mlp.')
        shapes[moe + 'gate.weight'] = (E, d)
        for e in range(E):
            x = moe + 'experts.%d.' % e
            if mixtral:
                shapes[x + 'w1.weight'] = (F, d)
                shapes[x + 'w3.weight'] = (F, d)
                shapes[x + 'w2.weight'] = (d, F)
            else:
                shapes[x + 'gate_proj.weight'] = (F, d)
                shapes[x + 'up_proj.weight'] = (F, d)
                shapes[x + 'down_proj.weight'] = (d, F)
    return shapes


def moe(c, w, p, x, margins):
    mixtral = c['architectures'][0] == 'MixtralForCausalLM'
    E = c['num_local_experts'] if mixtral else c['num_experts']
    k = c['num_experts_per_tok']
    pre = p + ('block_sparse_moe.' if mixtral else 'mlp.')
    logits = w[pre + 'gate.weight'] @ x
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    order = np.argsort(-prob, kind='stable')
    top = order[:k]
    if k < E:
        margins.append(prob[order[k - 1]] - prob[order[k]])
    weights = prob[top]
    if mixtral or c.get('norm_topk_prob', False):
        weights = weights / weights.sum()
    out = np.zeros_like(x)
    for e, wt in zip(top, weights):
        q = pre + 'experts.%d.' % e
        if mixtral:
            h = act(c, w[q + 'w1.weight'] @ x) * (w[q + 'w3.weight'] @ x)
            out += wt * (w[q + 'w2.weight'] @ h)
        else:
            h = act(c, w[q + 'gate_proj.weight'] @ x) * (w[q + 'up_proj.weight'] @ x)
            out += wt * (w[q + 'down_proj.weight'] @ h)
    return out, [int(e) for e in top]


def logits(c, seed, ids):
    w = {name: tensor(name, s, seed) for name, s in names(c).items()}
    mixtral = c['architectures'][0] == 'MixtralForCausalLM'
    d, L, H = c['hidden_size'], c['num_hidden_layers'], c['num_attention_heads']
    KV = c.get('num_key_value_heads') or H
    hd = c.get('head_dim') or d // H
    eps = c['rms_norm_eps']
    window = c.get('sliding_window') if mixtral else None
    f = inv_freq(c)
    head = w['model.embed_tokens.weight'] if c.get('tie_word_embeddings') else w['lm_head.weight']
    keys, values = [[] for _ in range(L)], [[] for _ in range(L)]
    out, routes, margins = [], [], []
    for pos, tok in enumerate(ids):
        x = w['model.embed_tokens.weight'][tok].copy()
        route = []
        for l in range(L):
            p = 'model.layers.%d.' % l
            xb = rmsnorm(x, w[p + 'input_layernorm.weight'], eps)
            q = (w[p + 'self_attn.q_proj.weight'] @ xb).reshape(H, hd)
            k = (w[p + 'self_attn.k_proj.weight'] @ xb).reshape(KV, hd)
            v = (w[p + 'self_attn.v_proj.weight'] @ xb).reshape(KV, hd)
            if not mixtral:
                q = np.stack([rmsnorm(h, w[p + 'self_attn.q_norm.weight'], eps) for h in q])
                k = np.stack([rmsnorm(h, w[p + 'self_attn.k_norm.weight'], eps) for h in k])
            q, k = rope(q, pos, f), rope(k, pos, f)
            keys[l].append(k)
            values[l].append(v)
            first = max(0, pos - window + 1) if window else 0
            K, Vv = np.stack(keys[l][first:]), np.stack(values[l][first:])
            a = np.zeros((H, hd))
            for h in range(H):
                g = h // (H // KV)
                s = K[:, g, :] @ q[h] / math.sqrt(hd)
                e = np.exp(s - s.max())
                a[h] = (e / e.sum()) @ Vv[:, g, :]
            x = x + w[p + 'self_attn.o_proj.weight'] @ a.reshape(-1)
            y, top = moe(c, w, p, rmsnorm(x, w[p + 'post_attention_layernorm.weight'], eps), margins)
            x = x + y
            route.append(top)
        out.append((head @ rmsnorm(x, w['model.norm.weight'], eps)).tolist())
        routes.append(route)
    return out, routes, min(margins)


def base(arch, **kw):
    c = {'architectures': [arch], 'hidden_size': 16, 'num_hidden_layers': 2, 'num_attention_heads': 4,
         'num_key_value_heads': 2, 'vocab_size': 32, 'max_position_embeddings': 64, 'rms_norm_eps': 1e-5,
         'rope_theta': 1000000.0, 'tie_word_embeddings': False, 'hidden_act': 'silu'}
    c.update(kw)
    return c


FIXTURES = {
    # Top-2 of 4 experts of 8 neurons, Mistral's window short enough to act.
    'mixtral': base('MixtralForCausalLM', intermediate_size=8, num_local_experts=4, num_experts_per_tok=2,
                    sliding_window=5),
    # Top-3 of 8 experts of 6 neurons, renormalised (as Qwen3-30B-A3B's
    # config says) and not (transformers' default).
    'qwen3moe': base('Qwen3MoeForCausalLM', head_dim=8, intermediate_size=24, moe_intermediate_size=6,
                     num_experts=8, num_experts_per_tok=3, norm_topk_prob=True, decoder_sparse_step=1,
                     mlp_only_layers=[], attention_bias=False),
    'qwen3moe_unnormalised': base('Qwen3MoeForCausalLM', head_dim=8, intermediate_size=24,
                                  moe_intermediate_size=6, num_experts=8, num_experts_per_tok=3,
                                  norm_topk_prob=False, attention_bias=False, tie_word_embeddings=True),
}
SEED = 11

if __name__ == '__main__':
    result = {'source': 'tests/reference/moe_reference.py', 'seed': SEED, 'sequences': SEQUENCES, 'models': {}}
    for name, c in FIXTURES.items():
        runs = [logits(c, SEED, s) for s in SEQUENCES]
        margin = min(r[2] for r in runs)
        if margin < MARGIN:
            sys.exit('%s: the router\'s k-th and (k+1)-th probabilities come within %g: pick another seed' %
                     (name, margin))
        result['models'][name] = {'config': c, 'logits': [r[0] for r in runs], 'experts': [r[1] for r in runs]}
        print(name, 'done, smallest top-k margin %.2e' % margin, file=sys.stderr)
    print(json.dumps(result))
