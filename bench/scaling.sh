#!/usr/bin/env bash
# The scaling table of docs/SCALING.md: training steps and compression on
# 1 and 2 MPI ranks of 1 thread each, and on 1 rank of 2 threads instead;
# strong scaling (the same work) and weak (twice the work on twice the
# ranks); the gradient allreduce's time. Needs a build with MPI
# (-DBCAE_MPI=ON) and Debian's Open MPI. Takes ~5-10 minutes on 2 cores.
#
#   bench/scaling.sh [BUILD_DIR (build)] [WORK_DIR (/tmp/bcae-scaling)]
#
# A training step's time is (T(8 steps) - T(2 steps)) / 6 of whole runs,
# so start-up (MPI, planning, data) cancels. Compression rates are the
# verbs' own "throughput" lines (file I/O included). Run it on a quiet
# machine: every number is a wall-clock time.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
work=${2:-/tmp/bcae-scaling}
bcae=$build/bcae
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Ranks unbound (Open MPI binds each to one core by default, which would
# pile a rank's threads onto one core); idle ranks yield.
mpirun=(mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
model=(--m 4 --n 4 --d 3)
mkdir -p "$work"
cd "$work"
[ -d d4 ] || "$bcae" simulate --events 4 --seed 11 --out d4 -q >/dev/null
[ -d d8 ] || "$bcae" simulate --events 8 --seed 11 --out d8 -q >/dev/null

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.9g\", $* }"; }
# run NP THREADS CMD...: NP 0 is a plain process.
run() {
  local np=$1 t=$2; shift 2
  if [ "$np" = 0 ]; then BCAE_NUM_THREADS=$t "$bcae" "$@"
  else BCAE_NUM_THREADS=$t "${mpirun[@]}" -np "$np" -x BCAE_NUM_THREADS "$bcae" "$@"; fi
}
train_run() { # NP THREADS BATCH STEPS -> seconds
  local t0; t0=$(now)
  run "$1" "$2" train --data d8 "${model[@]}" --batch-size "$3" --max-steps "$4" --num-epochs 100 \
      --validation-batches-per-epoch 0 --seed 1 --clf-bias-init 0.1 --threads "$2" -q \
      --out "tr-$1-$2-$3.safetensors" >/dev/null
  calc "$(now) - $t0"
}
step_time() { # NP THREADS BATCH -> seconds per step
  local a b
  a=$(train_run "$1" "$2" "$3" 2); b=$(train_run "$1" "$2" "$3" 8)
  calc "($b - $a) / 6"
}
rate() { # NP THREADS ARGS... -> wedges/s from the throughput line
  run "$@" | awk '/^throughput/ {print $2; exit}'
}

echo "# bcae scaling, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo
echo "## Training: BCAE-2D(4,4,3), seconds per step (global batch B)"
echo
echo "| ranks x threads | B | wedges/rank | s/step | wedges/s | vs 1x1 B=4 |"
echo "|---|---:|---:|---:|---:|---:|"
base=$(step_time 0 1 4)
row() { # label B per_rank s
  printf "| %s | %s | %s | %.3f | %.2f | %.2fx |\n" "$1" "$2" "$3" "$4" \
    "$(calc "$2 / $4")" "$(calc "($2 / $4) / (4 / $base)")"
}
row "1 x 1" 4 4 "$base"
row "2 x 1 (strong)" 4 2 "$(step_time 2 1 4)"
row "1 x 2 (threads)" 4 4 "$(step_time 0 2 4)"
row "2 x 1 (weak)" 8 4 "$(step_time 2 1 8)"
row "1 x 1" 8 8 "$(step_time 0 1 8)"
echo
floats=$(/usr/bin/python3 -c "
import json, struct, sys
f = open('tr-0-1-4.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]
h = json.loads(f.read(n)); h.pop('__metadata__', None)
print(sum((v['data_offsets'][1] - v['data_offsets'][0]) // 4 for v in h.values()))")
echo "## Gradient allreduce: $floats floats ($(calc "$floats * 4 / 1000000") MB)"
echo
"${mpirun[@]}" -np 2 "$build/bench/bench_allreduce" "$floats" 50 | sed 's/^/    /'
echo
echo "## Compression (wedges/s, file I/O included; the default model, fp32)"
echo
echo "| codec | ranks x threads | wedges | wedges/s | vs 1x1 |"
echo "|---|---|---:|---:|---:|"
for codec in bcae sparse; do
  extra=(); [ $codec = sparse ] && extra=(--codec sparse --max-error 0.05)
  c1=$(rate 0 1 compress -q -t 1 "${extra[@]}" -o c.bcae d4)
  c2=$(rate 2 1 compress -q -t 1 "${extra[@]}" -o c.bcae d4)
  c3=$(rate 0 2 compress -q -t 2 "${extra[@]}" -o c.bcae d4)
  c4=$(rate 2 1 compress -q -t 1 "${extra[@]}" -o c.bcae d8)
  for r in "1 x 1|48|$c1" "2 x 1 (strong)|48|$c2" "1 x 2 (threads)|48|$c3" "2 x 1 (weak)|96|$c4"; do
    IFS='|' read -r l w v <<<"$r"
    printf "| %s | %s | %s | %.2f | %.2fx |\n" $codec "$l" "$w" "$v" "$(calc "$v / $c1")"
  done
done
