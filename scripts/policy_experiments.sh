#!/usr/bin/env bash
# Reproduces the policy figures of docs/scheduling.md: for each hexgen trace (and all four together) on
# hetero-paper with Poisson arrivals: hexgen's alpha tuned by `t2s tune`, then every policy through `t2s compare`
# (P95 at 3 rates, max rate at 95% attainment by bisection, rr-fcfs's keep-up rate by bisection with every policy
# run there, attainment vs SLO scale), and the robustness runs.
# Usage: scripts/policy_experiments.sh [out=out/policies]   (about 25 minutes on 2 cores)
set -euo pipefail
T2S=${T2S:-./build/t2s}
OUT=${1:-out/policies}
DATA=${T2S_SHARED_DIR:-/work/shared}/data/hexgen_traces
N=${N:-1000}
common=(--workload hexgen-trace --cluster hetero-paper --workflows "$N")
for tr in all trace1 trace2 financial formula1; do
  q=(); [[ $tr != all ]] && q=(--questions "$DATA/$tr.json")
  d=(--data "$DATA")
  "$T2S" tune "${common[@]}" "${d[@]}" "${q[@]}" --policy hexgen --rates 0.1,0.15 --out "$OUT/$tr/tune" > "$OUT.$tr.tune.txt"
  alpha=$(sed -n 's/.*--param alpha=\([0-9.]*\).*/\1/p' "$OUT.$tr.tune.txt")
  # t2s's knobs by the same tuner on the same windows (its default grid: step_stretch, chunk_floor, remaining_q,
  # hopeless_frac); other policies ignore these parameters.
  "$T2S" tune "${common[@]}" "${d[@]}" "${q[@]}" --policy t2s --rates 0.1,0.15 --out "$OUT/$tr/tune_t2s" \
    > "$OUT.$tr.tune_t2s.txt"
  read -r -a knobs <<< "$(sed -n 's/^best: \(.*\)  (SLO.*/\1/p' "$OUT.$tr.tune_t2s.txt")"
  "$T2S" compare "${common[@]}" "${d[@]}" "${q[@]}" --param alpha="$alpha" "${knobs[@]}" \
    --rates 0.04,0.06,0.08,0.1,0.12 --bisect 0.02,0.8 --bisect-steps 12 --keepup rr-fcfs --out "$OUT/$tr/main" \
    > "$OUT/$tr.main.txt" 2>/dev/null || true
  for s in 1.5 2 3 4 6; do
    "$T2S" compare "${common[@]}" "${d[@]}" "${q[@]}" --param alpha="$alpha" "${knobs[@]}" --rate 0.12 \
      --slo-scale $s --out "$OUT/$tr/slo$s" > /dev/null 2>&1
  done
done
alpha=$(sed -n 's/.*--param alpha=\([0-9.]*\).*/\1/p' "$OUT.all.tune.txt")
d=(--data "$DATA" --param alpha="$alpha" --rates 0.04,0.08 --bisect 0.02,0.8 --bisect-steps 12 --keepup rr-fcfs)
# Bursty arrivals: both tuned policies are re-tuned on windows of the same bursty process (what `t2s tune` on the
# observed load does); the cost-error and slowdown runs keep the Poisson tuning (a tuner simulating with the
# policy's own, wrong, model cannot see the error).
for cv in 2 4; do
  g=(--arrival gamma:$cv --rates 0.04,0.08)
  "$T2S" tune "${common[@]}" --data "$DATA" "${g[@]}" --policy hexgen --out "$OUT/robust/gamma$cv/tune" \
    > "$OUT.gamma$cv.tune.txt"
  ga=$(sed -n 's/.*--param alpha=\([0-9.]*\).*/\1/p' "$OUT.gamma$cv.tune.txt")
  "$T2S" tune "${common[@]}" --data "$DATA" "${g[@]}" --policy t2s --out "$OUT/robust/gamma$cv/tune_t2s" \
    > "$OUT.gamma$cv.tune_t2s.txt"
  read -r -a gk <<< "$(sed -n 's/^best: \(.*\)  (SLO.*/\1/p' "$OUT.gamma$cv.tune_t2s.txt")"
  "$T2S" compare "${common[@]}" --data "$DATA" --param alpha="$ga" "${gk[@]}" --rates 0.04,0.08 \
    --bisect 0.02,0.8 --bisect-steps 12 --keepup rr-fcfs --arrival gamma:$cv --out "$OUT/robust/gamma$cv" > /dev/null 2>&1
done
"$T2S" compare "${common[@]}" "${d[@]}" --cost-error a100-0=0.3,a100-1=0.3,a6000=-0.3,l40s=-0.3 \
  --out "$OUT/robust/cost_fast_pessimistic" > /dev/null 2>&1
"$T2S" compare "${common[@]}" "${d[@]}" --cost-error a100-0=-0.3,a100-1=-0.3,a6000=0.3,l40s=0.3 \
  --out "$OUT/robust/cost_fast_optimistic" > /dev/null 2>&1
"$T2S" compare "${common[@]}" "${d[@]}" --slowdown a100-0:300:2 --out "$OUT/robust/slowdown" > /dev/null 2>&1
echo "wrote $OUT"
# Ablation of t2s on all traces: each improvement switched off alone.
for v in none batch_aware=0 chunk_wait=0 stage=0 affinity=0 slack=0 admission=0 adapt=0 step_stretch=0 remaining_q=0 \
         priority_wait=0; do
  p=(); [[ $v != none ]] && p=(--param "$v")
  "$T2S" compare "${common[@]}" --data "$DATA" "${p[@]}" --policies t2s --rates 0.04,0.08 --bisect 0.02,0.8 --bisect-steps 12 \
    --out "$OUT/ablation/$v" > /dev/null 2>&1
done
for v in none batch_aware=0 chunk_wait=0 stage=0 affinity=0 slack=0 admission=0 adapt=0 step_stretch=0 remaining_q=0 \
         priority_wait=0; do
  p=(); [[ $v != none ]] && p=(--param "$v")
  "$T2S" compare "${common[@]}" --data "$DATA" "${p[@]}" --policies t2s --rates 0.04,0.08 --bisect 0.02,0.8 --bisect-steps 12 \
    --slowdown a100-0:300:2 --out "$OUT/ablation_slowdown/$v" > /dev/null 2>&1
done
echo "wrote ablations"
# Spider, BIRD (mini-dev) and the synthetic benchmark through the Text-to-SQL agent and the calibrated oracle. These
# questions are far lighter than the paper's traces, so runs are longer (NO workflows) to reach a steady state.
SH=${T2S_SHARED_DIR:-/work/shared}/data
NO=${NO:-1000}
for wl in spider bird synthetic; do
  d=(); [[ $wl == spider ]] && d=(--data "$SH/spider"); [[ $wl == bird ]] && d=(--data "$SH/bird_minidev")
  "$T2S" tune --workload $wl "${d[@]}" --cluster hetero-paper --workflows "$NO" --policy hexgen --rates 1.5,2,2.5 \
    --out "$OUT/$wl/tune" > "$OUT.$wl.tune.txt"
  alpha=$(sed -n 's/.*--param alpha=\([0-9.]*\).*/\1/p' "$OUT.$wl.tune.txt")
  "$T2S" tune --workload $wl "${d[@]}" --cluster hetero-paper --workflows "$NO" --policy t2s --rates 1.5,2,2.5 \
    --out "$OUT/$wl/tune_t2s" > "$OUT.$wl.tune_t2s.txt"
  read -r -a knobs <<< "$(sed -n 's/^best: \(.*\)  (SLO.*/\1/p' "$OUT.$wl.tune_t2s.txt")"
  "$T2S" compare --workload $wl "${d[@]}" --cluster hetero-paper --workflows "$NO" --param alpha="$alpha" \
    "${knobs[@]}" --rates 0.5,0.75,1,1.5,2,2.5 --bisect 0.2,20 --bisect-steps 12 --keepup rr-fcfs \
    --out "$OUT/$wl/main" > "$OUT/$wl.main.txt" \
    2>/dev/null || true
  for s in 1.5 2 3 4 6; do
    "$T2S" compare --workload $wl "${d[@]}" --cluster hetero-paper --workflows "$NO" --param alpha="$alpha" \
      "${knobs[@]}" --rate 1.5 --slo-scale $s --out "$OUT/$wl/slo$s" > /dev/null 2>&1
  done
done
echo "wrote oracle workloads"
