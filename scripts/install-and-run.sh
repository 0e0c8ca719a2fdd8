#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the packages bcae needs,
# build it, simulate a small sample of TPC events (the calibrated simulator's
# defaults: docs/SIMULATOR.md), compress it with the shipped
# default model, decompress it, and report ratio, metrics and throughput, with
# a picture of one wedge, its reconstruction and their difference.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
bcae=./build/bcae
run() { echo; echo "== bcae $*"; "$bcae" "$@"; }
run simulate --events 2 --seed 1 --test-fraction 0.5 --out sample --force
run compress -o sample/test.bcae sample --split test
run inspect sample/test.bcae | tail -3
run decompress -f -o sample/decompressed sample/test.bcae
run metrics sample/outer/12-2_0-0/sim1_000001.npy sample/decompressed/12-2_0-0/sim1_000001.npy
run eval --data sample --split test
run plot sample/outer/12-2_0-0/sim1_000001.npy --model models/bcae2d-default.safetensors \
    --title "default model: original, reconstruction, difference" -o sample/figure5.png
echo
echo "Wrote sample/test.bcae, sample/decompressed/, sample/figure5.png"
