"""A short training run on simulated data must learn: its losses fall and its held-out
precision rises well above what an uninformed classifier reaches.

BCAE-2D(3, 3, 3), batch 2, learning rate 2e-3, classifier bias started at logit(0.1),
48 steps over 24 training wedges, validated on 12 held-out wedges after each of 4 epochs.
Measured on the 2-core machine (2026-11-24): step focal loss 0.28 -> 0.10, validation
loss 1.76 -> 1.34, validation precision 0.39 -> 0.53 with recall 0.22-0.30. A classifier
that has learned nothing marks voxels at random and gets a precision equal to the occupancy
(~0.11), so the thresholds below (precision > 0.3 and rising, recall > 0.12, losses falling
by a quarter) leave room for thread-count noise while failing any run that does not learn.

Usage: train_short.py BCAE_BINARY WORK_DIR
"""
import csv
import os
import re
import shutil
import subprocess
import sys

bcae, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "data")
subprocess.run([bcae, "simulate", "--events", "2", "--seed", "21", "--out", data,
                "--test-fraction", "0.5", "-q"], check=True, capture_output=True)
log = os.path.join(work, "losses.csv")
r = subprocess.run([bcae, "train", "--data", data, "--m", "3", "--n", "3", "--d", "3",
                    "--batch-size", "2", "--learning-rate", "2e-3", "--clf-bias-init", "0.1",
                    "--batches-per-epoch", "12", "--num-epochs", "4",
                    "--validation-batches-per-epoch", "6", "--out",
                    os.path.join(work, "model.safetensors"), "--log", log, "-q"],
                   capture_output=True, text=True)
print(r.stdout)
failures = []
if r.returncode != 0:
    failures.append("train failed: " + r.stderr)
else:
    rows = list(csv.DictReader(open(log)))
    seg = [float(x["loss_seg"]) for x in rows]
    early, late = sum(seg[1:6]) / 5, sum(seg[-10:]) / 10
    print(f"focal loss: steps 2-6 {early:.4f}, last 10 {late:.4f}")
    if not late < 0.75 * early:
        failures.append(f"focal loss did not fall by a quarter: {early:.4f} -> {late:.4f}")
    val = [tuple(float(v) for v in m) for m in re.findall(
        r"validation: loss (\S+) .* precision (\S+) recall (\S+)", r.stdout)]
    if len(val) != 4:
        failures.append(f"expected 4 validations, got {len(val)}")
    else:
        (l0, p0, r0), (l1, p1, r1) = val[0], val[-1]
        if not l1 < 0.9 * l0:
            failures.append(f"validation loss did not fall: {l0} -> {l1}")
        if not (p1 > p0 and p1 > 0.3):
            failures.append(f"validation precision did not rise above 0.3: {p0} -> {p1}")
        if not min(v[2] for v in val) > 0.12:
            failures.append(f"validation recall fell to chance: {[v[2] for v in val]}")
shutil.rmtree(work, ignore_errors=True)
for f in failures:
    print("FAILED:", f)
print(f"train_short: {len(failures)} failed")
sys.exit(1 if failures else 0)
