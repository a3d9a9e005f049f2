#!/usr/bin/env bash
# The test command (README, .ci/run): installs dependencies (Chromium and Node for the browser test too),
# builds Release and runs every test, then builds the unit tests under ASan+UBSan and runs them, then the server
# tests under ThreadSanitizer and runs their [concurrent] cases, then runs every libFuzzer harness for 30 s (clang
# build in build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
T2S_WITH_BROWSER=1 bash scripts/install-deps.sh
# ccache hits across checkouts in different folders (CI clones elsewhere).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
# The browser test drives Debian's Chromium with playwright-core from npm (no browser download).
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) ||
  echo "test.sh: npm ci failed in tests/browser; the browser test will report itself as skipped" >&2
cmake --preset release
cmake --build --preset release
ctest --preset release
cmake --preset asan
cmake --build --preset asan
ctest --preset asan
cmake --preset tsan
cmake --build --preset tsan
ctest --preset tsan
bash bench/fuzz/run.sh 30
