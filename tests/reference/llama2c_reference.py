#!/usr/bin/env python3
"""An independent, deliberately naive re-implementation of llama2.c's run.c
(forward pass, BPE encoder with its dummy prefix and byte fallback, greedy
decoding) in pure Python. It writes the golden file that
tests/integration/golden_test.cc compares llmflash against:

    python3 tests/reference/llama2c_reference.py ../shared/models/stories260K \
        > tests/testdata/stories260K_golden.json

It shares no code with the library: rescanning merges as llama2.c does, dense
matrices in llama2.c's layout, float64 arithmetic."""
import json, math, struct, sys


def load_model(path):
    data = open(path, 'rb').read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack('7i', data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    floats = struct.unpack('%df' % ((len(data) - 28) // 4), data[28:])
    pos = 0
    def take(n):
        nonlocal pos
        out = floats[pos:pos + n]
        pos += n
        return out
    hs = dim // n_heads
    kv_dim = hs * n_kv
    w = {}
    w['emb'] = take(vocab * dim)
    w['att_norm'] = take(n_layers * dim)
    w['wq'] = take(n_layers * dim * dim)
    w['wk'] = take(n_layers * kv_dim * dim)
    w['wv'] = take(n_layers * kv_dim * dim)
    w['wo'] = take(n_layers * dim * dim)
    w['ffn_norm'] = take(n_layers * dim)
    w['w1'] = take(n_layers * hidden * dim)
    w['w2'] = take(n_layers * dim * hidden)
    w['w3'] = take(n_layers * hidden * dim)
    w['norm'] = take(dim)
    take(seq * hs)  # freq_cis_real, freq_cis_imag
    w['cls'] = w['emb'] if shared else take(vocab * dim)
    cfg = dict(dim=dim, hidden=hidden, L=n_layers, H=n_heads, KV=n_kv, V=vocab, seq=seq, hs=hs,
               kv_dim=kv_dim)
    return cfg, w


def matvec(w, off, x, rows, cols):
    return [sum(w[off + i * cols + j] * x[j] for j in range(cols)) for i in range(rows)]


def rmsnorm(x, w, off):
    ss = sum(v * v for v in x) / len(x) + 1e-5
    s = 1.0 / math.sqrt(ss)
    return [w[off + i] * (s * x[i]) for i in range(len(x))]


class Model:
    def __init__(self, path):
        self.c, self.w = load_model(path)
        c = self.c
        self.kc = [[None] * c['seq'] for _ in range(c['L'])]
        self.vc = [[None] * c['seq'] for _ in range(c['L'])]

    def forward(self, token, pos):
        c, w = self.c, self.w
        d, hs, kvd, hid = c['dim'], c['hs'], c['kv_dim'], c['hidden']
        x = list(w['emb'][token * d:(token + 1) * d])
        for l in range(c['L']):
            xb = rmsnorm(x, w['att_norm'], l * d)
            q = matvec(w['wq'], l * d * d, xb, d, d)
            k = matvec(w['wk'], l * kvd * d, xb, kvd, d)
            v = matvec(w['wv'], l * kvd * d, xb, kvd, d)
            for i in range(0, d, 2):
                head_dim = i % hs
                freq = 1.0 / (10000.0 ** (head_dim / hs))
                val = pos * freq
                fcr, fci = math.cos(val), math.sin(val)
                for vec in ([q, k] if i < kvd else [q]):
                    v0, v1 = vec[i], vec[i + 1]
                    vec[i] = v0 * fcr - v1 * fci
                    vec[i + 1] = v0 * fci + v1 * fcr
            self.kc[l][pos], self.vc[l][pos] = k, v
            out = [0.0] * d
            kv_mul = c['H'] // c['KV']
            for h in range(c['H']):
                qh = q[h * hs:(h + 1) * hs]
                ko = (h // kv_mul) * hs
                att = [sum(qh[i] * self.kc[l][t][ko + i] for i in range(hs)) / math.sqrt(hs)
                       for t in range(pos + 1)]
                m = max(att)
                e = [math.exp(a - m) for a in att]
                s = sum(e)
                att = [a / s for a in e]
                for i in range(hs):
                    out[h * hs + i] = sum(att[t] * self.vc[l][t][ko + i] for t in range(pos + 1))
            xb2 = matvec(w['wo'], l * d * d, out, d, d)
            x = [a + b for a, b in zip(x, xb2)]
            xb = rmsnorm(x, w['ffn_norm'], l * d)
            h1 = matvec(w['w1'], l * hid * d, xb, hid, d)
            h3 = matvec(w['w3'], l * hid * d, xb, hid, d)
            hb = [a * (1.0 / (1.0 + math.exp(-a))) * b for a, b in zip(h1, h3)]
            xb = matvec(w['w2'], l * d * hid, hb, d, hid)
            x = [a + b for a, b in zip(x, xb)]
        x = rmsnorm(x, w['norm'], 0)
        return matvec(w['cls'], 0, x, c['V'], d)


def load_tokenizer(path, vocab_size):
    data = open(path, 'rb').read()
    pos = 4
    pieces, scores = [], []
    for _ in range(vocab_size):
        score, n = struct.unpack('fi', data[pos:pos + 8])
        pos += 8
        pieces.append(data[pos:pos + n])
        pos += n
        scores.append(score)
    return pieces, scores


def encode(text, pieces, scores):
    def lookup(s):
        return pieces.index(s) if s in pieces else -1
    tokens = [1]
    if text:
        tokens.append(lookup(b' '))
    b = text.encode('utf-8')
    i = 0
    while i < len(b):
        n = 1
        while i + n < len(b) and n < 4 and (b[i + n] & 0xC0) == 0x80:
            n += 1
        cp = b[i:i + n]
        tid = lookup(cp)
        if tid != -1:
            tokens.append(tid)
        else:
            tokens.extend(x + 3 for x in cp)
        i += n
    while True:
        best, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            tid = lookup(pieces[tokens[i]] + pieces[tokens[i + 1]])
            if tid != -1 and scores[tid] > best:
                best, best_id, best_idx = scores[tid], tid, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def decode(prev, tok, pieces):
    p = pieces[tok]
    if prev == 1 and p.startswith(b' '):
        p = p[1:]
    if len(p) == 6 and p.startswith(b'<0x') and p.endswith(b'>'):
        p = bytes([int(p[3:5], 16)])
    return p


def generate(model_dir, prompt, steps):
    m = Model(model_dir + '/stories260K.bin')
    pieces, scores = load_tokenizer(model_dir + '/tok512.bin', m.c['V'])
    tokens = encode(prompt, pieces, scores)
    out, ids, token = b'', [], tokens[0]
    for pos in range(steps):
        logits = m.forward(token, pos)
        if pos + 1 < len(tokens):
            nxt = tokens[pos + 1]
        else:
            nxt = max(range(len(logits)), key=lambda i: (logits[i], -i))
            if nxt in (1, 2):
                break
            ids.append(nxt)
            out += decode(token, nxt, pieces)
        token = nxt
    return tokens, ids, out.decode('utf-8', errors='replace')


if __name__ == '__main__':
    model_dir = sys.argv[1]
    cases = [("", 120), ("Once upon a time", 100), ("Lily and Ben went to the", 100),
             ("The little dog", 100), ("Tom had a red car. He", 100)]
    golden = []
    for prompt, steps in cases:
        prompt_ids, ids, text = generate(model_dir, prompt, steps)
        golden.append({"prompt": prompt, "steps": steps, "prompt_ids": prompt_ids,
                       "generated_ids": ids, "text": text})
        print(prompt, '=>', text, file=sys.stderr)
    print(json.dumps({"model": "stories260K", "source": "tests/reference/llama2c_reference.py",
                      "cases": golden}, indent=1))
