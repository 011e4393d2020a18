#!/usr/bin/env python3
"""An independent q8_0 / q4_0 quantizer written from GGUF's published block
layout and llama.cpp's reference rounding (quantize_row_q8_0_ref,
quantize_row_q4_0_ref), emulating f32 arithmetic step by step with struct.
It writes the cases tests/unit/util/quantize_test.cc checks byte for byte:

    python3 tests/reference/quant_reference.py > tests/testdata/quant_reference.json

Shares no code with the library.

q8_0 block (34 bytes): f16 d, then 32 int8 q;  x = d * q
    d = max|x| / 127;  q = round-half-away(x * (1/d))
q4_0 block (18 bytes): f16 d, then 16 bytes; element j in the low nibble of
byte j, element j + 16 in the high nibble;  x = d * (nibble - 8)
    m = the element of largest |x| (the first on ties);  d = m / -8
    nibble = min(15, trunc(x * (1/d) + 8.5))
1/d is taken of the f32 d (0 when d is 0); d is then stored as f16
(round to nearest even)."""
import json, math, random, struct


def f32(v):
    return struct.unpack('<f', struct.pack('<f', v))[0]


def f16_bytes(v):
    return struct.pack('<e', v)


def q8_0(xs):
    out = b''
    for b in range(0, len(xs), 32):
        blk = xs[b:b + 32]
        amax = 0.0
        for v in blk:
            amax = max(amax, abs(v))
        d = f32(amax / 127.0)
        inv = f32(1.0 / d) if d != 0 else 0.0
        out += f16_bytes(d)
        for v in blk:
            t = f32(v * inv)
            q = int(math.floor(abs(t) + 0.5)) * (1 if t >= 0 else -1)
            out += struct.pack('<b', q)
    return out


def q4_0(xs):
    out = b''
    for b in range(0, len(xs), 32):
        blk = xs[b:b + 32]
        amax, m = 0.0, 0.0
        for v in blk:
            if amax < abs(v):
                amax, m = abs(v), v
        d = f32(m / -8.0)
        inv = f32(1.0 / d) if d != 0 else 0.0
        out += f16_bytes(d)
        for j in range(16):
            lo = min(15, int(f32(f32(blk[j] * inv) + 8.5)))
            hi = min(15, int(f32(f32(blk[j + 16] * inv) + 8.5)))
            out += bytes([lo | (hi << 4)])
    return out


def cases():
    rng = random.Random(2026)
    yield 'normal', [rng.gauss(0, 1) for _ in range(128)]
    yield 'small weights', [rng.gauss(0, 0.02) for _ in range(64)]
    yield 'large weights', [rng.gauss(0, 300) for _ in range(64)]
    yield 'zeros', [0.0] * 32
    yield 'one spike', [0.0] * 7 + [3.5] + [0.0] * 24
    yield 'negative spike', [0.01 * i for i in range(31)] + [-9.0]
    # +m and -m: q4_0 takes the first, so the sign of d follows it.
    yield 'tied magnitudes', [2.0] + [rng.uniform(-1, 1) for _ in range(30)] + [-2.0]
    yield 'tied magnitudes, negative first', [-2.0] + [rng.uniform(-1, 1) for _ in range(30)] + [2.0]
    # x / d landing on .5 for q8_0 (127 * k / 254 steps) and on nibble edges.
    yield 'halves', [127.0] + [k + 0.5 for k in range(-15, 16)]
    yield 'nibble edges', [-8.0] + [k * 0.5 for k in range(-15, 16)]
    # d below f16's normal range (subnormal) and far below (rounds to 0).
    yield 'tiny', [rng.gauss(0, 1e-6) for _ in range(32)]
    yield 'subnormal scale', [rng.gauss(0, 1e-9) for _ in range(32)]
    yield 'uniform', [rng.uniform(-1, 1) for _ in range(96)]


def main():
    out = []
    for name, xs in cases():
        xs = [f32(v) for v in xs]
        out.append({
            'name': name,
            'x_bits': [struct.unpack('<I', struct.pack('<f', v))[0] for v in xs],
            'q8_0': q8_0(xs).hex(),
            'q4_0': q4_0(xs).hex(),
        })
    print(json.dumps({'cases': out}, indent=1))


if __name__ == '__main__':
    main()
