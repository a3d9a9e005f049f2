#!/usr/bin/env bash
# Recorded-run check (issue 17): a real run on two embedded CPU engine instances of different speed, recorded and
# re-simulated with each instance's cost model fitted on its own iterations, under each policy; prints
# `t2s compare-runs` (P50/P95 latency gaps, SLO attainment gap, per-call service-time error) and writes the
# comparisons as JSON.
# Usage: bench/recorded/run.sh CLUSTER.json [POLICY...]      (default policies: t2s rr-fcfs)
# Environment: T2S (default ./build/t2s), OUT (default out/recorded), WORKLOAD (default synthetic), LIMIT (questions,
#   default 8), RATE (workflows/s, default 0.5), SLO (default abs:30), TIME_LIMIT (s, default 170), SEED (default 1),
#   TOKENIZER (llama2.c tokenizer for .bin models; default beside the model), FIT (an earlier run's iterations.jsonl:
#   the real run's online cost models start from it, `replay --fit`), PREFIX (measured | declared, default measured:
#   the replay's `--recorded-prefix`).
# The cluster file must name engine instances (e.g. two instances of one model with different `threads`, or two
# models); the same file is given to the simulated replay.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 CLUSTER.json [POLICY...]" >&2; exit 2; }
cluster=$1
shift
policies=("$@")
[[ ${#policies[@]} -gt 0 ]] || policies=(t2s rr-fcfs)
t2s=${T2S:-./build/t2s}
out=${OUT:-out/recorded}
tok=()
[[ -n "${TOKENIZER:-}" ]] && tok=(--tokenizer "$TOKENIZER")
[[ -n "${FIT:-}" ]] && tok+=(--fit "$FIT")
for p in "${policies[@]}"; do
  real=$out/$p/real sim=$out/$p/sim
  mkdir -p "$real" "$sim"
  echo "== $p: real run"
  "$t2s" replay --backend engine --cluster "$cluster" "${tok[@]}" --workload "${WORKLOAD:-synthetic}" \
    --limit "${LIMIT:-8}" --rate "${RATE:-0.5}" --slo-scale "${SLO:-abs:30}" --seed "${SEED:-1}" \
    --time-limit "${TIME_LIMIT:-170}" --policy "$p" --no-trace --out "$real"
  echo "== $p: simulated replay of the recording"
  "$t2s" replay --backend sim --workload recorded --questions "$real/recorded.json" --fit "$real/iterations.jsonl" \
    --cluster "$cluster" --policy "$p" --recorded-prefix "${PREFIX:-measured}" --no-trace --out "$sim"
  echo "== $p: real vs simulated"
  "$t2s" compare-runs "$real" "$sim" --json "$out/$p/compare.json"
done
