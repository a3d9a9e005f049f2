#!/usr/bin/env bash
# Installs the Debian packages t2s needs to build, test and run (as root on Debian bookworm).
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache git pkg-config
      libboost-dev rapidjson-dev libsqlite3-dev catch2 libcli11-dev
      python3 python3-numpy sqlite3
      clang-14 libclang-rt-14-dev)  # clang + libFuzzer for tests/fuzz (bench/fuzz/run.sh)
if [ "${T2S_WITH_BROWSER:-0}" = 1 ]; then
  pkgs+=(chromium)
  # Node may come from another source (e.g. a nodesource build that bundles npm): only add what is missing.
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
