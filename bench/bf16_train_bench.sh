#!/bin/sh
# bf16 mixed-precision against fp32 training steps (issue 18 item 5):
# `bcae bench --train` alternating fp32 and bf16 for ROUNDS rounds in one
# session, so that both see the same machine; prints each round's median
# step time and mean CPU time per step (all threads: on a shared machine it
# moves less than wall time), and the medians' ratios.
#
#   bench/bf16_train_bench.sh BUILD_DIR [ROUNDS] [extra bench options...]
#   e.g. bench/bf16_train_bench.sh build 5 --batch 4 --threads 2
set -eu
build=$1
rounds=${2:-3}
shift 2 || shift $#
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=1
while [ "$i" -le "$rounds" ]; do
    for p in fp32 bf16; do
        "$build/bcae" bench --train --precision "$p" --seconds 1 --json "$@" |
            tail -n 1 >"$tmp/$p.$i.json"
        /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("round %s %s: train step %.3f s (%.3f wedges/s), CPU %.3f s" % (sys.argv[2], d["precision"], d["train_step_s"], d["train_wedges_per_s"], d["train_step_cpu_s"]))' "$tmp/$p.$i.json" "$i"
    done
    i=$((i + 1))
done
/usr/bin/python3 - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
for key, what in (("train_step_s", "wall"), ("train_step_cpu_s", "CPU")):
    t = {p: [json.load(open(f"{tmp}/{p}.{i}.json"))[key] for i in range(1, rounds + 1)]
         for p in ("fp32", "bf16")}
    per = [a / b for a, b in zip(t["fp32"], t["bf16"])]
    mf, mb = statistics.median(t["fp32"]), statistics.median(t["bf16"])
    print(f"median step ({what} time): fp32 {mf:.3f} s, bf16 {mb:.3f} s: bf16 speed-up "
          f"{mf / mb:.2f}x (per round {', '.join(f'{r:.2f}' for r in per)})")
PY
