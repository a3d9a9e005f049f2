#!/usr/bin/env bash
# The main job (README): installs dependencies, builds Release, runs `t2s demo` on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset release >/dev/null
cmake --build --preset release --target t2s
./build/t2s demo "$@"
