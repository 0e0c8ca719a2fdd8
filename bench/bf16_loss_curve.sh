#!/bin/sh
# The loss curve of mixed-precision (bf16) training against fp32 (issue 18
# item 5): the same model, data, seed and batches, 500 AdamW steps each, then
# bench/bf16_loss_curve.py plots both into docs/img/bf16_loss_curve.png and
# prints the comparison quoted in docs/PRECISION.md.
#
#   bench/bf16_loss_curve.sh BUILD_DIR WORK_DIR [STEPS]
#
# Needs an AVX512-BF16 CPU for bf16 at speed (elsewhere oneDNN emulates it).
# 2 x 500 steps of BCAE-2D(2,2,2) at batch 2: over an hour on 2 heavily shared
# cores (the two runs may also be started in parallel, then the .py run by hand).
set -eu
build=$1
work=$2
steps=${3:-500}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
# The small calibrated simulated sample: 4 events = 96 wedges, 72 for training.
[ -f "$work/data/outer/train.txt" ] ||
    "$build/bcae" simulate --events 4 --seed 7 --out "$work/data" -q
for p in fp32 bf16; do
    # 36 batches of 2 per epoch, 14 epochs (>= 500 steps), stopped at $steps;
    # warm-up past the end, so the learning rate stays at 2e-3 throughout.
    "$build/bcae" train --data "$work/data" --m 2 --n 2 --d 2 --batch-size 2 \
        --learning-rate 2e-3 --clf-bias-init 0.1 --seed 7 --num-epochs 14 \
        --num-warmup-epochs 14 --validation-batches-per-epoch 0 --max-steps "$steps" \
        --threads 2 --precision "$p" --out "$work/model-$p.safetensors" \
        --log "$work/losses-$p.csv" -q
done
/usr/bin/python3 "$here/bf16_loss_curve.py" "$work/losses-fp32.csv" "$work/losses-bf16.csv" \
    "$here/../docs/img/bf16_loss_curve.png"
