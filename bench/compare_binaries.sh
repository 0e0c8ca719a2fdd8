#!/usr/bin/env bash
# Side-by-side throughput of two bcae binaries (e.g. before and after a refactor), interleaved
# in one run so that both see the same machine state: encoder, decoders and a training step of
# BCAE-2D(4,8,3), BCAE-HT and BCAE++ on bench's synthetic input. Prints one line per
# (arch, binary, round) and the per-arch ratios new/old of the medians.
#   bench/compare_binaries.sh OLD_BCAE NEW_BCAE [ROUNDS] [SECONDS]
set -euo pipefail
old=$1 new=$2 rounds=${3:-2} secs=${4:-3}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in ${ARCHS:-bcae-2d bcae-ht bcae++}; do
  for r in $(seq "$rounds"); do
    for which in old new; do
      bin=$old; [ "$which" = new ] && bin=$new
      "$bin" bench --arch "$arch" --train --batch 4 --threads 2 --seconds "$secs" --json \
        | tail -1 > "$tmp/$arch.$which.$r.json"
      echo "$arch $which round $r: $(cat "$tmp/$arch.$which.$r.json" | $py -c 'import json,sys; j=json.load(sys.stdin); print("enc %.2f dec %.2f train %.2f wedges/s" % (j["encoder_wedges_per_s"], j["decoder_wedges_per_s"], j["train_wedges_per_s"]))')"
    done
  done
done
$py - "$tmp" "${ARCHS:-bcae-2d bcae-ht bcae++}" <<'PY'
import glob, json, statistics, sys
d = sys.argv[1]
print(f"{'arch':8} {'pass':7} {'old w/s':>9} {'new w/s':>9} {'new/old':>8}")
for arch in sys.argv[2].split():
    for key, name in (("encoder_wedges_per_s", "encode"), ("decoder_wedges_per_s", "decode"),
                      ("train_wedges_per_s", "train")):
        v = {w: statistics.median(json.load(open(f))[key] for f in glob.glob(f"{d}/{arch}.{w}.*.json"))
             for w in ("old", "new")}
        print(f"{arch:8} {name:7} {v['old']:9.2f} {v['new']:9.2f} {v['new'] / v['old']:8.3f}")
PY
