#!/usr/bin/env bash
# The BCAE-2D encoder chain's 3x3 algorithms side by side (bcae bench --chain-conv), interleaved
# in one run so that every variant sees the same machine state: encode only, random weights,
# bench's synthetic input. Prints each run and, per (precision, variant), the median over rounds
# of the per-run median and min ms a batch, and wedges/s of the median.
#   bench/chain_conv_ab.sh BCAE [ROUNDS] [SECONDS] [VARIANTS] [PRECISIONS]
#   e.g. bench/chain_conv_ab.sh build/bcae 5 2 "direct wino2 wino4" "fp32 bf16"
# Env: THREADS (2), BATCH (4), MND ("4 8 3").
set -euo pipefail
bin=$1 rounds=${2:-3} secs=${3:-2} variants=${4:-direct wino2 wino4} precs=${5:-fp32 bf16}
threads=${THREADS:-2} batch=${BATCH:-4}
read -r m n d <<< "${MND:-4 8 3}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" bench --m "$m" --n "$n" --d "$d" --only encode --seconds 0 | sed -n 2,3p
for r in $(seq "$rounds"); do
  for p in $precs; do
    for v in $variants; do
      "$bin" bench --m "$m" --n "$n" --d "$d" --batch "$batch" --threads "$threads" \
        --precision "$p" --chain-conv "$v" --only encode --seconds "$secs" --json \
        | tail -1 > "$tmp/$p.$v.$r.json"
      echo "round $r $p $v: $($py -c 'import json,sys; j=json.load(open(sys.argv[1])); print("median %.2f ms, min %.2f ms, %s" % (j["encoder_ms_per_batch"], j["encoder_min_ms_per_batch"], j["encoder_kernels"]))' "$tmp/$p.$v.$r.json")"
    done
  done
done
$py - "$tmp" "$precs" "$variants" "$batch" <<'PY'
import glob, json, statistics, sys
d, precs, variants, batch = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
print(f"{'precision':9} {'variant':8} {'median ms':>10} {'min ms':>8} {'wedges/s':>9} {'vs first':>8}")
for p in precs:
    base = None
    for v in variants:
        runs = [json.load(open(f)) for f in glob.glob(f"{d}/{p}.{v}.*.json")]
        med = statistics.median(j["encoder_ms_per_batch"] for j in runs)
        mn = statistics.median(j["encoder_min_ms_per_batch"] for j in runs)
        base = base or med
        print(f"{p:9} {v:8} {med:10.2f} {mn:8.2f} {1e3 * batch / med:9.1f} {base / med:8.3f}")
PY
