#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the packages bcae needs,
# build it, simulate a small sample of TPC events and print its statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
echo
echo "== bcae simulate --events 4 --seed 1 --out sample"
./build/bcae simulate --events 4 --seed 1 --out sample --force
echo
echo "== bcae inspect sample/outer/12-2_0-0/sim1_000000.npy"
./build/bcae inspect sample/outer/12-2_0-0/sim1_000000.npy
