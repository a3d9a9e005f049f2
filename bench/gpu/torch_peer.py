#!/usr/bin/env python3
"""The device check's peer: the same ~1B Llama-shaped model as bench_gpu (random weights made on the device) in plain
PyTorch eager (no torch.compile, no CUDA graphs): decode tokens/s at batch 1, 8, 64, 256 after a prefill to the same
context, and prefill TFLOP/s at 512 and 4096 tokens, measured the same way (wall time around a synchronised step).
Writes one JSON object to --out. --dry-run prints the plan and exits before importing torch's CUDA side."""
import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="torch.json")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16"])
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--prefills", default="512,4096")
    ap.add_argument("--small", action="store_true", help="2 layers of the same widths (smoke run)")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    cfg = dict(layers=2 if a.small else 22, dim=2048, hidden=5632, heads=32, kv_heads=4, head_dim=64, vocab=32000)
    batches = [int(x) for x in a.batches.split(",")]
    prefills = [int(x) for x in a.prefills.split(",")]
    print(f"torch_peer: {cfg}, {a.dtype}, decode batches {batches} at context {a.context} ({a.steps} steps), "
          f"prefill {prefills}", flush=True)
    if a.dry_run:
        print("torch_peer: dry run, stopping before the GPU")
        return 0
    import torch
    import torch.nn.functional as F

    torch.manual_seed(1234)
    dev = torch.device("cuda")
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    L, D, H, NH, KV, HD, V = (cfg[k] for k in ("layers", "dim", "hidden", "heads", "kv_heads", "head_dim", "vocab"))

    def uni(rows, cols, bound):
        return (torch.rand(rows, cols, device=dev, dtype=torch.float32) * 2 - 1).mul_(bound).to(dt)

    emb = uni(V, D, 1.0)
    layers = []
    for _ in range(L):
        layers.append(dict(wq=uni(NH * HD, D, math.sqrt(3 / D)), wk=uni(KV * HD, D, math.sqrt(3 / D)),
                           wv=uni(KV * HD, D, math.sqrt(3 / D)), wo=uni(D, NH * HD, math.sqrt(3 / (NH * HD))),
                           wg=uni(H, D, math.sqrt(3 / D)), wu=uni(H, D, math.sqrt(3 / D)),
                           wd=uni(D, H, math.sqrt(3 / H)), n1=torch.ones(D, device=dev, dtype=dt),
                           n2=torch.ones(D, device=dev, dtype=dt)))
    norm_f = torch.ones(D, device=dev, dtype=dt)
    wcls = uni(V, D, math.sqrt(3 / D))
    max_ctx = max([a.context + a.steps + 8] + prefills)
    inv = 1.0 / (10000.0 ** (torch.arange(0, HD, 2, device=dev, dtype=torch.float32) / HD))
    ang = torch.outer(torch.arange(max_ctx, device=dev, dtype=torch.float32), inv)
    cos, sin = ang.cos(), ang.sin()

    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dt) * w

    def rope(x, pos):  # x [B, heads, T, HD], interleaved pairs
        c, s = cos[pos][None, None], sin[pos][None, None]
        x0, x1 = x.float()[..., 0::2], x.float()[..., 1::2]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).flatten(-2).to(dt)

    def forward(tokens, start, kc, vc):
        """tokens [B, T] at positions start..start+T-1; caches [L][B, KV, max, HD] updated in place."""
        B, T = tokens.shape
        pos = torch.arange(start, start + T, device=dev)
        x = emb[tokens]
        for l, w in enumerate(layers):
            h = rms(x, w["n1"])
            q = F.linear(h, w["wq"]).view(B, T, NH, HD).transpose(1, 2)
            k = F.linear(h, w["wk"]).view(B, T, KV, HD).transpose(1, 2)
            v = F.linear(h, w["wv"]).view(B, T, KV, HD).transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            kc[l][:, :, start:start + T] = k
            vc[l][:, :, start:start + T] = v
            o = F.scaled_dot_product_attention(q, kc[l][:, :, :start + T], vc[l][:, :, :start + T],
                                               is_causal=T > 1 and start == 0, enable_gqa=True)
            x = x + F.linear(o.transpose(1, 2).reshape(B, T, NH * HD), w["wo"])
            h = rms(x, w["n2"])
            x = x + F.linear(F.silu(F.linear(h, w["wg"])) * F.linear(h, w["wu"]), w["wd"])
        return F.linear(rms(x[:, -1], norm_f), wcls).float().argmax(-1)

    def timed(fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t0, r

    res = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, model=cfg, dtype=a.dtype,
               mode="eager", decode=[], prefill=[])
    with torch.inference_mode():
        for B in batches:
            dec_ctx = a.context + a.steps + 8  # 3 warm-up steps + the timed ones
            kc = [torch.empty(B, KV, dec_ctx, HD, device=dev, dtype=dt) for _ in range(L)]
            vc = [torch.empty(B, KV, dec_ctx, HD, device=dev, dtype=dt) for _ in range(L)]
            prompt = torch.randint(0, V, (B, a.context), device=dev)
            chunk = max(1, 4096 // a.context)  # as bench_gpu: whole prompts, at most 4096 rows per pass
            for b0 in range(0, B, chunk):
                sl = slice(b0, min(B, b0 + chunk))
                forward(prompt[sl], 0, [c[sl] for c in kc], [c[sl] for c in vc])
            tok = prompt[:, -1:]
            times = []
            for step in range(3 + a.steps):
                t, nxt = timed(lambda: forward(tok, a.context + step, kc, vc))
                tok = nxt[:, None]
                if step >= 3:
                    times.append(t)
            total = sum(times)
            times.sort()
            res["decode"].append(dict(batch=B, context=a.context, steps=len(times), tokens_per_s=B * len(times) / total,
                                      step_ms_mean=1e3 * total / len(times), step_ms_median=1e3 * times[len(times) // 2]))
            print(f"torch decode batch {B:4d}: {B * len(times) / total:10.1f} tokens/s", flush=True)
            del kc, vc
            torch.cuda.empty_cache()
        params = L * (D * NH * HD + 2 * D * KV * HD + NH * HD * D + 3 * D * H)
        for T in prefills:
            kc = [torch.empty(1, KV, T, HD, device=dev, dtype=dt) for _ in range(L)]
            vc = [torch.empty(1, KV, T, HD, device=dev, dtype=dt) for _ in range(L)]
            toks = torch.randint(0, V, (1, T), device=dev)
            times = [timed(lambda: forward(toks, 0, kc, vc))[0] for _ in range(4)][1:]
            times.sort()
            t = times[len(times) // 2]
            flop = 2.0 * params * T + 2.0 * V * D + 4.0 * L * NH * HD * (T * (T + 1) / 2)
            res["prefill"].append(dict(tokens=T, seconds_median=t, flop=flop, tflops=flop / t / 1e12))
            print(f"torch prefill {T:5d}: {1e3 * t:.2f} ms, {flop / t / 1e12:.1f} TFLOP/s", flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
