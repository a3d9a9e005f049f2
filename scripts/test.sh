#!/usr/bin/env bash
# The test command (README, .ci/run): installs dependencies, builds Release and runs every test,
# then builds the unit tests under ASan+UBSan and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# ccache hits across checkouts in different folders (CI clones elsewhere).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset release
cmake --build --preset release
ctest --preset release
cmake --preset asan
cmake --build --preset asan
ctest --preset asan
