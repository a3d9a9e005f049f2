#!/usr/bin/env bash
# Runs every libFuzzer harness of tests/fuzz for SECONDS each (default 30) from its seed corpus and prints the
# executions per harness. Builds build-fuzz with the 'fuzz' preset (clang) first. A crash stops with exit 1 and
# leaves the reproducer in out/fuzz/<harness>/ (turn it into a regression test).
# The mutation seed is fixed (T2S_FUZZ_SEED, default 1) so that a CI run explores the inputs its rehearsal did and
# fails on a regression, not on a new random draw; longer hunts set T2S_FUZZ_SEED=0 (libFuzzer picks one).
#   usage: [T2S_FUZZ_SEED=N] bench/fuzz/run.sh [SECONDS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
shift || true
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(fuzz_sql_extract fuzz_model_files fuzz_tokenizers fuzz_workload_files fuzz_cluster_file fuzz_server_parsers)
fi
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
[ -f build-fuzz/CMakeCache.txt ] || cmake --preset fuzz > /dev/null
cmake --build build-fuzz -j2 --target "${harnesses[@]}" > /dev/null
status=0
printf '%-22s %12s %10s %s\n' harness executions exec/s result
for h in "${harnesses[@]}"; do
  work="out/fuzz/$h"
  rm -rf "$work" && mkdir -p "$work/corpus"
  # The seed corpus is read-only input; new inputs go to the scratch corpus under out/.
  log="$work/log.txt"
  if ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=tests/fuzz/ubsan.supp \
      "build-fuzz/tests/fuzz/$h" -seed="${T2S_FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
      -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" "tests/fuzz/corpus/$h" > "$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and $work/)"
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  printf '%-22s %12s %10s %s\n' "$h" "$execs" "$((execs / seconds))" "$result"
done
exit $status
