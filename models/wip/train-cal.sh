#!/bin/sh
# Calibrated-simulator training of BCAE-2D(4,4,3) (issue 16 item 3), models/README.md's recipe.
# Binary: a copy of wt-sim's build/bcae at commit 167ce31 (branch sim).
set -e
cd /work/train-cal
B=/work/train-cal/bcae
if [ ! -f /work/data-cal/outer/test.txt ]; then
  nice -n 19 $B simulate --events 120 --seed 100 --out /work/data-cal -q -t 2 > simulate.txt
fi
nice -n 19 $B stats /work/data-cal --split test -q --compare /work/wt-sim/docs/sphenix_outer_stats.json > data-cal-test-stats.txt || true
RESUME=""
[ -f bcae2d-443.ckpt ] && RESUME="--resume bcae2d-443.ckpt"
nice -n 19 $B train --data /work/data-cal --arch bcae-2d --m 4 --n 4 --d 3 --batch-size 4 \
    --learning-rate 2e-3 --clf-bias-init 0.1 --num-epochs 100 --batches-per-epoch 200 \
    --num-warmup-epochs 30 --sched-steps 5 --sched-gamma 0.9 \
    --validation-batches-per-epoch 16 --seed 1 --threads 2 \
    --out bcae2d-443.safetensors --log losses.csv --checkpoint bcae2d-443.ckpt \
    --checkpoint-every 100 --max-steps ${MAX_STEPS:-6200} $RESUME -q
