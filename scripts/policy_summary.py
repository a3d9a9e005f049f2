#!/usr/bin/python3
"""Summarises scripts/policy_experiments.sh output into the markdown tables of docs/scheduling.md and SVG plots.
Usage: /usr/bin/python3 scripts/policy_summary.py OUT_DIR [SVG_DIR]"""
import json, os, sys

out = sys.argv[1]
svg_dir = sys.argv[2] if len(sys.argv) > 2 else None
POL = ["rr-fcfs", "least-loaded", "edf", "hexgen", "rr-urgency", "balanced-fcfs", "autellix-plas", "t2s"]
TRACES = ["all", "trace1", "trace2", "financial", "formula1", "spider", "bird", "synthetic"]
PAPER = "paper (HexGen vs vLLM): P95 1.42-1.56x, throughput 1.49-1.81x"


def load(path):
    with open(path) as f:
        return json.load(f)


def runs_by(d):
    r = {}
    for x in d["runs"]:
        r[(x["policy"], round(x["rate"], 4))] = x
    return r


def load_compare(path):
    """A compare.json as (runs by (policy, rate), max rate at SLO by policy, rr-fcfs keep-up rate or 0); None if absent."""
    if not os.path.exists(path):
        return None
    d = load(path)
    return runs_by(d), d.get("max_rate_at_slo", {}), round(d.get("keepup", {}).get("rate", 0), 4)


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def keeps_up(r, p, rt):
    """A policy keeps up at a rate when its throughput is at least 90% of the offered rate."""
    return (p, rt) in r and r[(p, rt)]["throughput_wf_per_s"] >= 0.9 * rt


def main_table(tr):
    d = load(f"{out}/{tr}/main/compare.json")
    r = runs_by(d)
    mr = d.get("max_rate_at_slo", {})
    rates = sorted({k[1] for k in r})
    # The highest rate where each peer still keeps up: P95 ratios against a peer are taken there.
    hi = {peer: max([rt for rt in rates if keeps_up(r, peer, rt)] or [rates[0]])
          for peer in ["rr-fcfs", "hexgen", "autellix-plas"]}
    # `t2s compare --keepup rr-fcfs` found rr-fcfs's limit by bisection (same rule); the grid only brackets it.
    ku = d.get("keepup", {})
    if ku.get("policy") == "rr-fcfs" and ku.get("rate", 0) > 0:
        hi["rr-fcfs"] = round(ku["rate"], 4)
    lines = [f"| policy | " + " | ".join(f"P95 @{rt}" for rt in rates) + " | max rate @95% | P95 vs rr | rate vs rr | "
             f"P95 vs hexgen @{hi['rr-fcfs']} / @{hi['hexgen']} | rate vs hexgen | "
             f"P95 vs autellix @{hi['rr-fcfs']} / @{hi['autellix-plas']} | rate vs autellix |",
             "|---" * (len(rates) + 8) + "|"]
    p95 = lambda p, rt: r[(p, rt)]["latency_p95_s"]
    for p in POL:
        if (p, rates[0]) not in r:
            continue
        cells = [fmt(r[(p, rt)]["latency_p95_s"]) for rt in rates]
        ratios = []
        for peer in ["rr-fcfs", "hexgen", "autellix-plas"]:
            at_rr = fmt(p95(peer, hi["rr-fcfs"]) / p95(p, hi["rr-fcfs"]), 2) + "x"
            at_own = fmt(p95(peer, hi[peer]) / p95(p, hi[peer]), 2) + "x"
            ratios.append(at_rr if peer == "rr-fcfs" else f"{at_rr} / {at_own}")
            ratios.append(fmt(mr.get(p, 0) / mr[peer], 2) + "x" if mr.get(peer) else "-")
        lines.append(f"| {p} | " + " | ".join(cells) + f" | {fmt(mr.get(p), 3)} | " + " | ".join(ratios) + " |")
    return "\n".join(lines), hi


def slo_table(tr):
    scales = [1.5, 2, 3, 4, 6]
    rows = {}
    for s in scales:
        path = f"{out}/{tr}/slo{s}/compare.json"
        if not os.path.exists(path):
            continue
        for x in load(path)["runs"]:
            rows.setdefault(x["policy"], {})[s] = x["slo_attainment"]
    lines = ["| policy | " + " | ".join(f"SLO x{s}" for s in scales) + " |", "|---" * (len(scales) + 1) + "|"]
    for p in POL:
        if p in rows:
            lines.append(f"| {p} | " + " | ".join(fmt(100 * rows[p].get(s, float('nan')), 1) for s in scales) + " |")
    return "\n".join(lines), rows, scales


def robust_table():
    lines = ["| scenario | policy | P95 @0.04 | P95 @0.08 | P95 @rr keep-up | max rate @95% | rate vs rr | rate vs hexgen | "
             "rate vs autellix |", "|---|---|---|---|---|---|---|---|---|"]
    for sc in ["gamma2", "gamma4", "cost_fast_pessimistic", "cost_fast_optimistic", "slowdown"]:
        loaded = load_compare(f"{out}/robust/{sc}/compare.json")
        if not loaded:
            continue
        r, mr, ku = loaded
        for p in ["rr-fcfs", "hexgen", "autellix-plas", "t2s"]:
            vs = lambda peer: fmt(mr.get(p, 0) / mr[peer], 2) + "x" if mr.get(peer) else "-"
            at_ku = f"{fmt(r.get((p, ku), {}).get('latency_p95_s'))} @{ku}" if ku else "-"
            lines.append(f"| {sc} | {p} | {fmt(r.get((p, 0.04), {}).get('latency_p95_s'))} | "
                         f"{fmt(r.get((p, 0.08), {}).get('latency_p95_s'))} | {at_ku} | {fmt(mr.get(p), 3)} | {vs('rr-fcfs')} | "
                         f"{vs('hexgen')} | {vs('autellix-plas')} |")
    for sc in ["gamma2", "gamma4"]:
        th, tt = f"{out}/robust/{sc}/tune/tune.json", f"{out}/robust/{sc}/tune_t2s/tune.json"
        if os.path.exists(th) and os.path.exists(tt):
            knobs = " ".join(f"{k}={v:g}" for k, v in sorted(load(tt)["best"].items())) or "defaults"
            lines.append(f"\n{sc}: tuned on that arrival process (0.04 and 0.08 q/s windows): hexgen alpha = "
                         f"{load(th)['best'].get('alpha')}, t2s {knobs}.")
    return "\n".join(lines)


def svg_lines(title, series, xs, path, ylabel):
    W, H, L, B = 520, 300, 50, 40
    ys = [v for s in series.values() for v in s if v is not None]
    ymax = max(ys) if ys else 1
    xmin, xmax = min(xs), max(xs)
    X = lambda x: L + (x - xmin) / (xmax - xmin or 1) * (W - L - 130)
    Y = lambda y: H - B - y / ymax * (H - B - 20)
    colors = ["#999", "#6a3", "#3a6", "#d62", "#c9c", "#fa0", "#36c", "#c00"]
    out_ = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
            f'<text x="{L}" y="14">{title}</text>',
            f'<line x1="{L}" y1="{H-B}" x2="{W-130}" y2="{H-B}" stroke="#000"/><line x1="{L}" y1="{H-B}" x2="{L}" y2="20" stroke="#000"/>',
            f'<text x="4" y="24">{ylabel}</text><text x="{L}" y="{H-B+14}">{xmin}</text><text x="{W-150}" y="{H-B+14}">{xmax}</text>',
            f'<text x="4" y="{Y(ymax)+4}">{ymax:.0f}</text>']
    for i, (name, vals) in enumerate(series.items()):
        pts = " ".join(f"{X(x):.1f},{Y(v):.1f}" for x, v in zip(xs, vals) if v is not None)
        c = colors[i % len(colors)]
        out_.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        out_.append(f'<text x="{W-125}" y="{30+14*i}" fill="{c}">{name}</text>')
    out_.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out_))


for tr in TRACES:
    if not os.path.exists(f"{out}/{tr}/main/compare.json"):
        continue
    tune = load(f"{out}/{tr}/tune/tune.json")
    t, hi = main_table(tr)
    t2s_knobs = ""
    if os.path.exists(f"{out}/{tr}/tune_t2s/tune.json"):
        best = load(f"{out}/{tr}/tune_t2s/tune.json")["best"]
        t2s_knobs = ", t2s " + " ".join(f"{k}={v:g}" for k, v in sorted(best.items()))
    print(f"### {tr} (hexgen alpha = {tune['best'].get('alpha')}{t2s_knobs} by t2s tune; P95 ratios at the highest rate where "
          f"rr-fcfs keeps up ({hi['rr-fcfs']}) / where that peer keeps up)\n\n{t}\n")
    st, rows, scales = slo_table(tr)
    if rows:
        slo_rate = 1.5 if tr in ("spider", "bird", "synthetic") else 0.12
        print(f"SLO attainment (%) vs SLO scale at {slo_rate} questions/s:\n\n{st}\n")
    if svg_dir and tr == "all":
        os.makedirs(svg_dir, exist_ok=True)
        svg_lines("SLO attainment (%) vs SLO scale, hetero-paper, all traces, 0.12 q/s",
                  {p: [100 * rows[p].get(s) if rows[p].get(s) is not None else None for s in scales] for p in POL if p in rows},
                  scales, f"{svg_dir}/policies_slo_scale.svg", "%")
        d = load(f"{out}/{tr}/main/compare.json")
        r = runs_by(d)
        rates = sorted({k[1] for k in r})
        svg_lines("P95 latency (s) vs rate, hetero-paper, all traces",
                  {p: [r[(p, rt)]["latency_p95_s"] for rt in rates] for p in POL if (p, rates[0]) in r},
                  rates, f"{svg_dir}/policies_p95.svg", "s")
def ablation_table(sub):
    lines = ["| t2s variant | P95 @0.04 | P95 @0.08 | max rate @95% |", "|---|---|---|---|"]
    base = f"{out}/{sub}"
    if not os.path.isdir(base):
        return ""
    for v in ["none", "batch_aware=0", "chunk_wait=0", "stage=0", "affinity=0", "slack=0", "admission=0", "adapt=0",
              "step_stretch=0", "remaining_q=0", "priority_wait=0"]:
        path = f"{base}/{v}/compare.json"
        if not os.path.exists(path):
            continue
        d = load(path)
        r = runs_by(d)
        lines.append(f"| {'all on' if v == 'none' else v} | {fmt(r[('t2s', 0.04)]['latency_p95_s'])} | "
                     f"{fmt(r[('t2s', 0.08)]['latency_p95_s'])} | {fmt(d['max_rate_at_slo'].get('t2s'), 3)} |")
    return "\n".join(lines)


print("### Ablation of t2s (all traces)\n")
print(ablation_table("ablation"))
print("\nWith a100-0 slowed 2x from t = 300 s:\n")
print(ablation_table("ablation_slowdown"))
print("\n`batch_knee` is not in these ablations: on the traces an A100×4 KV cache (430k tokens) fills at 30-70 sequences of 6-14k tokens, "
      "long before the knee, so it never binds; its effect on the agent workloads is in its row of the knob table.")
print("\n### Robustness (all traces)\n")
print(robust_table())
print(f"\n({PAPER})")


def targets_table():
    """The issue's targets: t2s vs each peer, P95 at rr-fcfs's keep-up rate and max rate at 95%, exact thresholds."""
    goal = {"rr-fcfs": 2.0, "hexgen": 1.2, "autellix-plas": 1.2}
    lines = ["| workload | rr-fcfs keep-up rate | vs rr-fcfs P95 / rate (≥ 2) | vs hexgen P95 / rate (≥ 1.2) | "
             "vs autellix P95 / rate (≥ 1.2) |", "|---|---|---|---|---|"]
    mark = lambda v, g: f"{v:.3f} ✓" if v >= g else f"**{v:.3f}**"
    scen = [(tr, f"{out}/{tr}/main/compare.json") for tr in TRACES] + \
           [(f"robust {sc}", f"{out}/robust/{sc}/compare.json")
            for sc in ["gamma2", "gamma4", "cost_fast_pessimistic", "cost_fast_optimistic", "slowdown"]]
    for name, path in scen:
        loaded = load_compare(path)
        if not loaded:
            continue
        r, mr, ku = loaded
        if not ku or ("t2s", ku) not in r:
            continue
        cells = []
        for peer, g in goal.items():
            p95 = r[(peer, ku)]["latency_p95_s"] / r[("t2s", ku)]["latency_p95_s"]
            rate = mr["t2s"] / mr[peer] if mr.get(peer) else float("inf")
            cells.append(f"{mark(p95, g)} / {mark(rate, g) if mr.get(peer) else '∞ ✓ (peer never reaches 95%)'}")
        lines.append(f"| {name} | {ku} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


print("\n### Targets\n")
print(targets_table())
