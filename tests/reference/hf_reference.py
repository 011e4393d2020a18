#!/usr/bin/env python3
"""An independent pure-Python implementation of the Hugging Face Llama,
Mistral and OPT forward passes (as in transformers' modeling_llama.py,
modeling_mistral.py and modeling_opt.py), reading config.json and
safetensors directly. It writes the reference logits that
tests/integration/hf_test.cc compares llmflash against:

    python3 tests/reference/hf_reference.py ../shared/models/hf-tiny \
        > tests/testdata/hf_reference_logits.json

Shares no code with the library; float64 throughout."""
import json, math, os, struct, sys


def load_safetensors(d):
    files = []
    idx = os.path.join(d, 'model.safetensors.index.json')
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))['weight_map'].values()))
    else:
        files = ['model.safetensors']
    out = {}
    for f in files:
        data = open(os.path.join(d, f), 'rb').read()
        n = struct.unpack('<Q', data[:8])[0]
        header = json.loads(data[8:8 + n])
        for name, t in header.items():
            if name == '__metadata__':
                continue
            assert t['dtype'] == 'F32'
            b, e = t['data_offsets']
            vals = struct.unpack('<%df' % ((e - b) // 4), data[8 + n + b:8 + n + e])
            shape = t['shape']
            if len(shape) == 2:
                rows, cols = shape
                out[name] = [list(vals[r * cols:(r + 1) * cols]) for r in range(rows)]
            else:
                out[name] = list(vals)
    return out


def mv(w, x):
    return [sum(a * b for a, b in zip(row, x)) for row in w]


def add(a, b):
    return [x + y for x, y in zip(a, b)]


def rmsnorm(x, w, eps):
    s = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [w[i] * x[i] * s for i in range(len(x))]


def layernorm(x, w, b, eps=1e-5):
    m = sum(x) / len(x)
    var = sum((v - m) ** 2 for v in x) / len(x)
    s = 1.0 / math.sqrt(var + eps)
    return [(x[i] - m) * s * w[i] + b[i] for i in range(len(x))]


def softmax(v):
    m = max(v)
    e = [math.exp(a - m) for a in v]
    s = sum(e)
    return [a / s for a in e]


def attend(q, ks, vs, n_heads, n_kv, hd, first=0):
    out = []
    group = n_heads // n_kv
    for h in range(n_heads):
        kvh = h // group
        qh = q[h * hd:(h + 1) * hd]
        scores = [sum(qh[i] * k[kvh * hd + i] for i in range(hd)) / math.sqrt(hd)
                  for k in ks[first:]]
        p = softmax(scores)
        for i in range(hd):
            out.append(sum(p[t] * vs[first + t][kvh * hd + i] for t in range(len(p))))
    return out


def rope_half(v, n, hd, pos, theta):
    out = list(v)
    half = hd // 2
    for h in range(n):
        for i in range(half):
            freq = 1.0 / (theta ** (2 * i / hd))
            c, s = math.cos(pos * freq), math.sin(pos * freq)
            a, b = v[h * hd + i], v[h * hd + i + half]
            out[h * hd + i] = a * c - b * s
            out[h * hd + i + half] = b * c + a * s
    return out


def llama_logits(d, ids):
    c = json.load(open(os.path.join(d, 'config.json')))
    w = load_safetensors(d)
    H, KV = c['num_attention_heads'], c.get('num_key_value_heads') or c['num_attention_heads']
    hd = c.get('head_dim') or c['hidden_size'] // H
    eps, theta = c.get('rms_norm_eps', 1e-6), c.get('rope_theta', 10000.0)
    window = c.get('sliding_window') if c['architectures'][0] == 'MistralForCausalLM' else None
    act = c.get('hidden_act', 'silu')
    L = c['num_hidden_layers']
    head = w['model.embed_tokens.weight'] if c.get('tie_word_embeddings') else w['lm_head.weight']
    cache = [([], []) for _ in range(L)]
    result = []
    for pos, tok in enumerate(ids):
        x = list(w['model.embed_tokens.weight'][tok])
        for l in range(L):
            p = 'model.layers.%d.' % l
            xb = rmsnorm(x, w[p + 'input_layernorm.weight'], eps)
            q = rope_half(mv(w[p + 'self_attn.q_proj.weight'], xb), H, hd, pos, theta)
            k = rope_half(mv(w[p + 'self_attn.k_proj.weight'], xb), KV, hd, pos, theta)
            v = mv(w[p + 'self_attn.v_proj.weight'], xb)
            cache[l][0].append(k)
            cache[l][1].append(v)
            first = max(0, pos - window + 1) if window else 0
            a = attend(q, cache[l][0], cache[l][1], H, KV, hd, first)
            x = add(x, mv(w[p + 'self_attn.o_proj.weight'], a))
            xb = rmsnorm(x, w[p + 'post_attention_layernorm.weight'], eps)
            g = mv(w[p + 'mlp.gate_proj.weight'], xb)
            u = mv(w[p + 'mlp.up_proj.weight'], xb)
            f = (lambda z: z / (1 + math.exp(-z))) if act == 'silu' else (lambda z: max(z, 0.0))
            h = [f(a) * b for a, b in zip(g, u)]
            x = add(x, mv(w[p + 'mlp.down_proj.weight'], h))
        x = rmsnorm(x, w['model.norm.weight'], eps)
        result.append(mv(head, x))
    return result


def opt_logits(d, ids):
    c = json.load(open(os.path.join(d, 'config.json')))
    w = load_safetensors(d)
    H, L = c['num_attention_heads'], c['num_hidden_layers']
    hd = c['hidden_size'] // H
    pre = c.get('do_layer_norm_before', True)
    pfx = 'model.decoder.'
    cache = [([], []) for _ in range(L)]
    result = []
    for pos, tok in enumerate(ids):
        x = list(w[pfx + 'embed_tokens.weight'][tok])
        if pfx + 'project_in.weight' in w:
            x = mv(w[pfx + 'project_in.weight'], x)
        x = add(x, w[pfx + 'embed_positions.weight'][pos + 2])
        for l in range(L):
            p = pfx + 'layers.%d.' % l
            lin = lambda name, v: add(mv(w[p + name + '.weight'], v), w[p + name + '.bias'])
            ln = lambda name, v: layernorm(v, w[p + name + '.weight'], w[p + name + '.bias'])
            res = x
            xb = ln('self_attn_layer_norm', x) if pre else x
            q = [v * hd ** -0.5 for v in lin('self_attn.q_proj', xb)]
            k, v = lin('self_attn.k_proj', xb), lin('self_attn.v_proj', xb)
            cache[l][0].append(k)
            cache[l][1].append(v)
            # attend() divides by sqrt(hd); OPT scales q instead: undo one.
            a = attend([t * math.sqrt(hd) for t in q], cache[l][0], cache[l][1], H, H, hd)
            x = add(res, lin('self_attn.out_proj', a))
            if not pre:
                x = ln('self_attn_layer_norm', x)
            res = x
            xb = ln('final_layer_norm', x) if pre else x
            hmid = [max(t, 0.0) for t in lin('fc1', xb)]
            x = add(res, lin('fc2', hmid))
            if not pre:
                x = ln('final_layer_norm', x)
        if pfx + 'final_layer_norm.weight' in w:
            x = layernorm(x, w[pfx + 'final_layer_norm.weight'], w[pfx + 'final_layer_norm.bias'])
        if pfx + 'project_out.weight' in w:
            x = mv(w[pfx + 'project_out.weight'], x)
        result.append(mv(w[pfx + 'embed_tokens.weight'], x))
    return result


if __name__ == '__main__':
    root = sys.argv[1]
    seqs = [[2, 6, 2, 3, 6, 4, 10, 10, 9, 7, 7, 6, 3, 1, 4, 0],
            [0, 1, 2, 3, 4, 5, 6, 7, 10, 10, 10, 10, 10, 10]]
    out = {"source": "tests/reference/hf_reference.py", "sequences": seqs, "models": {}}
    for name in ['llama', 'llama-sharded', 'mistral', 'opt', 'opt350']:
        d = os.path.join(root, name)
        arch = json.load(open(os.path.join(d, 'config.json')))['architectures'][0]
        f = opt_logits if arch == 'OPTForCausalLM' else llama_logits
        out["models"][name] = [f(d, s) for s in seqs]
        print(name, 'done', file=sys.stderr)
    print(json.dumps(out))
