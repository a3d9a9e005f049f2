#!/usr/bin/python3
"""Independent numpy reference for t2s's engine tests (run with Debian's /usr/bin/python3, which has numpy).

usage: gguf_reference.py TOKENS MODEL.gguf [MODEL.gguf ...]
  For each model (a line "== PATH" first), parses the GGUF file with its own reader, dequantises F32/F16/BF16/Q8_0/Q4_0 tensors, runs the Llama/Qwen2 decoder in
  float64 over the comma-separated token ids (one causal sequence), and prints one line of logits per position.
Conventions: "llama" rotates adjacent pairs (GGUF's permuted Q/K), "qwen2" rotates first/second halves (NeoX);
rope_freqs.weight divides the frequencies (Llama-3 scaling); attn_{q,k,v}.bias are added when present; a missing
output.weight means the embedding is tied.
"""
import struct
import sys

import numpy as np

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Gguf:
    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.off = 0
        assert self.buf[:4] == b"GGUF", "bad magic"
        self.off = 4
        version, n_t, n_kv = self.u32(), self.u64(), self.u64()
        assert version in (2, 3)
        self.kv = {}
        for _ in range(n_kv):
            key = self.string()
            self.kv[key] = self.value(self.u32())
        infos = []
        for _ in range(n_t):
            name = self.string()
            nd = self.u32()
            dims = [self.u64() for _ in range(nd)]
            infos.append((name, dims, self.u32(), self.u64()))
        align = int(self.kv.get("general.alignment", 32))
        start = (self.off + align - 1) // align * align
        self.tensors = {}
        for name, dims, typ, off in infos:
            self.tensors[name] = self.load(dims, typ, start + off)

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.off)[0]
        self.off += struct.calcsize(fmt)
        return v

    def u32(self):
        return self.unpack("<I")

    def u64(self):
        return self.unpack("<Q")

    def string(self):
        n = self.u64()
        s = self.buf[self.off:self.off + n].decode("utf-8", errors="surrogateescape")
        self.off += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.u32(), self.u64()
            return [self.value(et) for _ in range(n)]
        return self.unpack(SCALAR[t])

    def load(self, dims, typ, at):
        n = int(np.prod(dims))
        if typ == 0:
            a = np.frombuffer(self.buf, np.float32, n, at).astype(np.float64)
        elif typ == 1:
            a = np.frombuffer(self.buf, np.float16, n, at).astype(np.float64)
        elif typ == 30:
            raw = np.frombuffer(self.buf, np.uint16, n, at).astype(np.uint32) << 16
            a = raw.view(np.float32).astype(np.float64)
        elif typ == 8:
            blocks = np.frombuffer(self.buf, np.uint8, n // 32 * 34, at).reshape(-1, 34)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float64)
            q = blocks[:, 2:].copy().view(np.int8).astype(np.float64)
            a = (q * d).reshape(-1)
        elif typ == 2:
            blocks = np.frombuffer(self.buf, np.uint8, n // 32 * 18, at).reshape(-1, 18)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float64)
            q = blocks[:, 2:]
            vals = np.concatenate([(q & 0x0F).astype(np.int64) - 8, (q >> 4).astype(np.int64) - 8], axis=1)
            a = (vals * d).reshape(-1)
        else:
            raise ValueError("unsupported tensor type %d" % typ)
        return a.reshape(list(reversed(dims)))  # ne[0] is the fastest axis


def rmsnorm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rope(x, pos, theta, style, factors):
    # x: [T, heads, hd]
    hd = x.shape[-1]
    j = np.arange(hd // 2)
    freq = theta ** (-2.0 * j / hd)
    if factors is not None:
        freq = freq / factors
    ang = pos[:, None] * freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = x.copy()
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
    else:
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        out[..., : hd // 2] = a * c - b * s
        out[..., hd // 2:] = a * s + b * c
    return out


def forward(g, tokens):
    arch = g.kv["general.architecture"]
    k = lambda name, d=None: g.kv.get(arch + "." + name, d)
    L, nh = k("block_count"), k("attention.head_count")
    nkv = k("attention.head_count_kv", nh)
    dim = k("embedding_length")
    hd = k("attention.key_length", dim // nh)
    eps = k("attention.layer_norm_rms_epsilon", 1e-5)
    theta = k("rope.freq_base", 10000.0)
    style = "neox" if arch == "qwen2" else "interleaved"
    t = g.tensors
    factors = t.get("rope_freqs.weight")
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    x = t["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = "blk.%d." % l
        h = rmsnorm(x, t[p + "attn_norm.weight"], eps)
        q = h @ t[p + "attn_q.weight"].T + t.get(p + "attn_q.bias", 0)
        kk = h @ t[p + "attn_k.weight"].T + t.get(p + "attn_k.bias", 0)
        v = h @ t[p + "attn_v.weight"].T + t.get(p + "attn_v.bias", 0)
        q = rope(q.reshape(T, nh, hd), pos, theta, style, factors)
        kk = rope(kk.reshape(T, nkv, hd), pos, theta, style, factors)
        v = v.reshape(T, nkv, hd)
        rep = nh // nkv
        kk = np.repeat(kk, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, kk) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", att, v).reshape(T, nh * hd)
        x = x + o @ t[p + "attn_output.weight"].T
        h = rmsnorm(x, t[p + "ffn_norm.weight"], eps)
        gate = h @ t[p + "ffn_gate.weight"].T
        up = h @ t[p + "ffn_up.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ t[p + "ffn_down.weight"].T
    x = rmsnorm(x, t["output_norm.weight"], eps)
    return x @ t.get("output.weight", t["token_embd.weight"]).T


def main():
    tokens = [int(s) for s in sys.argv[1].split(",")]
    for path in sys.argv[2:]:
        print("== " + path)
        for row in forward(Gguf(path), tokens):
            print(" ".join("%.9e" % v for v in row))


if __name__ == "__main__":
    main()
