#!/usr/bin/env bash
# The device check for t2s's CUDA backend, one script for one GPU, meant to finish in under 8 minutes:
#   1. configures and builds the engine alone with CUDA (CMake + a C++ compiler + nvcc; no Boost/SQLite/CLI11/
#      RapidJSON/Catch2 packages: Catch2 is vendored, the rest is not needed),
#   2. runs the `gpu` tests (kernels vs CPU oracles, CPU vs CUDA parity, batching on the device),
#   3. runs bench_gpu (a ~1B Llama made on the device: decode tokens/s + MBU at batch 1/8/64/256, prefill TFLOP/s at
#      512/4096, iteration records for `t2s cost-model --fit`) and torch_peer.py (the same model in PyTorch eager),
#   4. merges everything into $OUT/gpu_check.json (and keeps iterations.jsonl and the logs beside it).
# Usage: bench/gpu/run.sh [--dry-run] [--small]
#   --dry-run  everything up to the GPU: checks tools, configures and builds, runs the benches' --dry-run, writes
#              the JSON with "dry_run": true; no CUDA call is made.
#   --small    a 2-layer model of the same widths (a quick smoke run of the whole path).
# Environment: OUT (default ./gpu-out), T2S_GPU_BUILD (build folder, default build-gpu), T2S_CUDA_ARCH (default 90),
#   JOBS (default nproc), T2S_SHARED_DIR (shared data for the stories260K parity test, optional),
#   T2S_BUNDLED_MODEL (a model file for one more parity test, optional).
set -euo pipefail

dry=0
small=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    --small) small=(--small) ;;
    *) echo "run.sh: unknown argument $arg (use --dry-run, --small)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${OUT:-$PWD/gpu-out}
build=${T2S_GPU_BUILD:-$root/build-gpu}
arch=${T2S_CUDA_ARCH:-90}
jobs=${JOBS:-$(nproc)}
mkdir -p "$out"
t_start=$(date +%s)
log() { printf 'run.sh: t=%ss %s\n' "$(( $(date +%s) - t_start ))" "$*"; }

nvcc_bin=$(command -v nvcc || true)
[[ -z "$nvcc_bin" && -x /usr/local/cuda/bin/nvcc ]] && nvcc_bin=/usr/local/cuda/bin/nvcc
[[ -n "$nvcc_bin" ]] || { echo "run.sh: nvcc not found (PATH, /usr/local/cuda/bin)" >&2; exit 2; }
command -v cmake >/dev/null || { echo "run.sh: cmake not found" >&2; exit 2; }
python=${PYTHON:-python3}
log "nvcc $nvcc_bin, cmake $(cmake --version | head -1 | awk '{print $3}'), arch $arch, $jobs jobs, out $out"

log "configure + build (engine only, CUDA) in $build"
cmake -S "$root" -B "$build" -DT2S_ENGINE_ONLY=ON -DT2S_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON \
  ${T2S_SHARED_DIR:+-DT2S_SHARED_DIR="$T2S_SHARED_DIR"} >"$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target tests_engine_gpu bench_gpu >>"$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; exit 1; }
log "built"

if (( dry )); then
  "$build/bench/gpu/bench_gpu" --dry-run "${small[@]}" | tee "$out/engine.log"
  "$python" "$root/bench/gpu/torch_peer.py" --dry-run "${small[@]}" | tee "$out/torch.log"
  ctest --test-dir "$build" -N -L gpu | tee "$out/gpu_tests.log"
  "$python" - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
json.dump({"dry_run": True, "note": "built and planned; stopped before the GPU"}, open(f"{out}/gpu_check.json", "w"))
EOF
  log "dry run done: $out/gpu_check.json"
  exit 0
fi

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv \
  >"$out/nvidia_smi.csv" 2>&1 || true

log "gpu tests"
set +e
timeout 180 ctest --test-dir "$build" -L gpu --output-on-failure >"$out/gpu_tests.log" 2>&1
tests_rc=$?
log "gpu tests rc=$tests_rc"

log "bench_gpu"
timeout 200 "$build/bench/gpu/bench_gpu" "${small[@]}" --out "$out/engine.json" --iterations "$out/iterations.jsonl" \
  >"$out/engine.log" 2>&1
engine_rc=$?
log "bench_gpu rc=$engine_rc"

log "torch_peer"
timeout 150 "$python" "$root/bench/gpu/torch_peer.py" "${small[@]}" --out "$out/torch.json" >"$out/torch.log" 2>&1
torch_rc=$?
log "torch_peer rc=$torch_rc"
set -e

"$python" - "$out" "$tests_rc" "$engine_rc" "$torch_rc" "$(( $(date +%s) - t_start ))" <<'EOF'
import json, os, sys
out, tests_rc, engine_rc, torch_rc, wall = sys.argv[1], *map(int, sys.argv[2:])
def load(name):
    p = os.path.join(out, name)
    try:
        return json.load(open(p))
    except Exception as e:
        return {"error": f"{name}: {e}"}
def tail(name, n=40):
    try:
        return open(os.path.join(out, name)).read().splitlines()[-n:]
    except OSError:
        return []
engine, torch = load("engine.json"), load("torch.json")
ratios = {"decode_tokens_per_s": {}, "prefill_tflops": {}}
for e in engine.get("decode", []):
    for t in torch.get("decode", []):
        if t["batch"] == e["batch"]:
            ratios["decode_tokens_per_s"][str(e["batch"])] = e["tokens_per_s"] / t["tokens_per_s"]
for e in engine.get("prefill", []):
    for t in torch.get("prefill", []):
        if t["tokens"] == e["tokens"]:
            ratios["prefill_tflops"][str(e["tokens"])] = e["tflops"] / t["tflops"]
iterations = []
try:
    iterations = [json.loads(l) for l in open(os.path.join(out, "iterations.jsonl"))]
except OSError:
    pass
result = {
    "dry_run": False, "wall_s": wall,
    "gpu_tests": {"rc": tests_rc, "log_tail": tail("gpu_tests.log")},
    "engine": engine, "engine_rc": engine_rc, "engine_log_tail": tail("engine.log", 20),
    "torch_eager": torch, "torch_rc": torch_rc, "torch_log_tail": tail("torch.log", 20),
    "ratio_engine_over_torch": ratios,
    "iterations": iterations,
    "cost_model_fit": "where t2s is built: t2s cost-model --cluster bench/gpu/cost_model_cluster.json "
                      "[--fit iterations.jsonl] (the H100-SXM/H200 profile for this shape, without and with the fit "
                      "to the records above)",
}
json.dump(result, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)
print(json.dumps(ratios))
EOF
log "done: $out/gpu_check.json"
[[ $tests_rc -eq 0 && $engine_rc -eq 0 ]]
