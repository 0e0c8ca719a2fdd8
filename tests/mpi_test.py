"""MPI tests (docs/SCALING.md, docs/TRAINING.md): `mpirun -np 2 bcae ...` against one process.

  train   data-parallel training, batch 4, 10 steps: per-step losses and coefficient
          within 1e-5 relative of one process, final weights within 1e-4; validation
          the same; the log written once; a batch that does not split is refused.
  resume  a run stopped on 2 ranks resumed on 1, and one stopped on 1 resumed on 2,
          against the uninterrupted one-process run (same tolerances).
  codec   compress (fp16 codes, zstd at a batch that does not divide the shares, the
          sparse codec, 3 ranks) byte-identical to one process (cmp); decompress writes
          the same files; eval the same means and the same CSV; --append and verbs
          that run as one process refused.

Usage: mpi_test.py train|resume|codec MPIEXEC BCAE_BINARY WORK_DIR
(run with /usr/bin/python3: needs numpy). Runs as root too (Open MPI's
OMPI_ALLOW_RUN_AS_ROOT variables are set here).
"""
import csv
import filecmp
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

what, mpiexec, bcae, work = sys.argv[1:5]
os.environ["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
os.environ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
# Two ranks on a 2-core machine: no binding, so each rank's thread can go
# where a core is free, and wait passively (the CLI's default) in MPI too.
os.environ.setdefault("OMPI_MCA_hwloc_base_binding_policy", "none")
os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", msg)


def run(np_, *args):
    cmd = [bcae, *args] if np_ == 0 else [mpiexec, "--oversubscribe", "-np", str(np_), bcae, *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def ok(r, what):
    check(r.returncode == 0, f"{what}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")


def path(name):
    return os.path.join(work, name)


def load_safetensors(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"])
    return out


def log_rows(p):
    return list(csv.DictReader(open(p)))


def compare_logs(a, b, what):
    ra, rb = log_rows(a), log_rows(b)
    check(len(ra) == len(rb), f"{what}: {len(ra)} vs {len(rb)} log rows")
    worst = 0.0
    for x, y in zip(ra, rb):
        check(x["step"] == y["step"] and x["epoch"] == y["epoch"], f"{what}: step {x['step']}")
        for k in ("loss", "loss_seg", "loss_reg", "coef"):
            u, v = float(x[k]), float(y[k])
            worst = max(worst, abs(u - v) / max(abs(u), 1e-30))
    check(worst <= 1e-5, f"{what}: per-step losses differ by {worst:.3g} relative (> 1e-5)")
    return worst


def compare_weights(a, b, what):
    wa, wb = load_safetensors(a), load_safetensors(b)
    check(sorted(wa) == sorted(wb), f"{what}: tensor names differ")
    worst_abs, worst_rel = 0.0, 0.0
    for k in wa:
        if k.startswith("optim."):
            continue
        d = float(np.max(np.abs(wa[k].astype(np.float64) - wb[k])))
        scale = max(float(np.max(np.abs(wa[k]))), 1e-30)
        worst_abs = max(worst_abs, d)
        worst_rel = max(worst_rel, d / scale)
    check(worst_abs <= 1e-4, f"{what}: final weights differ by {worst_abs:.3g} (> 1e-4)")
    return worst_abs, worst_rel


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = path("data")
ok(run(0, "simulate", "--events", "2", "--seed", "3", "--out", data, "-q"), "simulate")

# BCAE-2D(3,3,3), global batch 4, 2 epochs of 5 steps, one validation batch each.
train = ["train", "--data", data, "--m", "3", "--n", "3", "--d", "3", "--batch-size", "4",
         "--batches-per-epoch", "5", "--num-epochs", "2", "--validation-batches-per-epoch", "1",
         "--seed", "5", "--learning-rate", "2e-3", "--clf-bias-init", "0.1", "--threads", "1",
         "-q"]

if what == "train":
    r1 = run(0, *train, "--out", path("one.safetensors"), "--log", path("one.csv"))
    ok(r1, "train, one process")
    r2 = run(2, *train, "--out", path("two.safetensors"), "--log", path("two.csv"))
    ok(r2, "train, 2 ranks")
    if not failures:
        check(len(log_rows(path("two.csv"))) == 10, "the 2-rank log has 10 rows (rank 0 alone)")
        lw = compare_logs(path("one.csv"), path("two.csv"), "2 ranks vs one")
        wa, wr = compare_weights(path("one.safetensors"), path("two.safetensors"), "2 ranks vs one")
        v1 = [l for l in r1.stdout.splitlines() if "validation" in l]
        v2 = [l for l in r2.stdout.splitlines() if "validation" in l]
        check(len(v1) == 2 and len(v2) == 2, f"one validation line per epoch: {v2}")
        for a, b in zip(v1, v2):
            fa = [float(t) for t in a.split()[6::2]]
            fb = [float(t) for t in b.split()[6::2]]
            check(np.allclose(fa, fb, rtol=1e-4), f"validation: {a} | {b}")
        print(f"train: 2 ranks x 2 vs 1 x 4, 10 steps: losses within {lw:.3g} relative, "
              f"weights within {wa:.3g} ({wr:.3g} of the largest weight of a tensor)")
    r = run(2, *train[:-1], "--batch-size", "3", "--out", path("x.safetensors"))
    check(r.returncode == 2 and "does not split evenly over 2 ranks" in r.stderr,
          f"batch 3 on 2 ranks refused: {r.returncode} {r.stderr}")
elif what == "resume":
    ok(run(0, *train, "--out", path("one.safetensors"), "--log", path("one.csv")), "one process")
    # Stopped at step 5 (an epoch's end) on 2 ranks, resumed on 1.
    ok(run(2, *train, "--max-steps", "5", "--out", path("a.safetensors"), "--log", path("a.csv")),
       "2 ranks to step 5")
    ok(run(0, *train, "--resume", path("a.safetensors.ckpt"), "--out", path("a.safetensors"),
           "--log", path("a.csv")), "resumed on 1")
    # Stopped at step 3 (mid-epoch) on 1, resumed on 2.
    ok(run(0, *train, "--max-steps", "3", "--out", path("b.safetensors"), "--log", path("b.csv")),
       "one process to step 3")
    ok(run(2, *train, "--resume", path("b.safetensors.ckpt"), "--out", path("b.safetensors"),
           "--log", path("b.csv")), "resumed on 2 ranks")
    if not failures:
        for n in ("a", "b"):
            lw = compare_logs(path("one.csv"), path(n + ".csv"), f"resume {n}")
            wa, _ = compare_weights(path("one.safetensors"), path(n + ".safetensors"), f"resume {n}")
            print(f"resume {n}: losses within {lw:.3g}, weights within {wa:.3g}")
elif what == "codec":
    def same_files(a, b, what):
        check(filecmp.cmp(a, b, shallow=False), f"{what}: {a} and {b} differ")

    for np_ in (0, 2):
        tag = f"np{np_}"
        ok(run(np_, "compress", "-q", "-t", "1", "-o", path(f"c-{tag}.bcae"), data), f"compress {tag}")
        ok(run(np_, "compress", "-q", "-t", "1", "-b", "3", "--zstd", "3", "-o",
               path(f"z-{tag}.bcae"), data), f"compress zstd {tag}")
        ok(run(np_, "compress", "-q", "--codec", "sparse", "--max-error", "0.05", "-o",
               path(f"s-{tag}.bcae"), data), f"compress sparse {tag}")
        ok(run(np_, "decompress", "-q", "-t", "1", "-o", path(f"d-{tag}"), path("c-np0.bcae")),
           f"decompress {tag}")
        r = run(np_, "eval", "-q", "-t", "1", "--data", data, "--limit", "12", "--json", "--csv",
                path(f"e-{tag}.csv"))
        ok(r, f"eval {tag}")
        open(path(f"e-{tag}.json"), "w").write(r.stdout)
    ok(run(3, "compress", "-q", "-t", "1", "-b", "2", "-o", path("c-np3.bcae"), data,
           "--split", "train"), "compress np3")
    ok(run(0, "compress", "-q", "-t", "1", "-b", "2", "-o", path("c-np3-ref.bcae"), data,
           "--split", "train"), "compress np3 reference")
    if not failures:
        same_files(path("c-np0.bcae"), path("c-np2.bcae"), "fp16 codes, 2 ranks")
        same_files(path("z-np0.bcae"), path("z-np2.bcae"), "zstd, batch 3, 2 ranks")
        same_files(path("s-np0.bcae"), path("s-np2.bcae"), "sparse, 2 ranks")
        same_files(path("c-np3-ref.bcae"), path("c-np3.bcae"), "train split, batch 2, 3 ranks")
        cmp = filecmp.dircmp(path("d-np0"), path("d-np2"))
        files = []
        for root, _, names in os.walk(path("d-np0")):
            files += [os.path.relpath(os.path.join(root, n), path("d-np0")) for n in names]
        check(len(files) == 24, f"decompress wrote {len(files)} files")
        for f in files:
            same_files(os.path.join(path("d-np0"), f), os.path.join(path("d-np2"), f), "decompress")
        same_files(path("e-np0.csv"), path("e-np2.csv"), "eval --csv")
        a, b = json.load(open(path("e-np0.json"))), json.load(open(path("e-np2.json")))
        for k in ("occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall", "wedges"):
            check(abs(a[k] - b[k]) <= 1e-12 * max(1.0, abs(a[k])), f"eval {k}: {a[k]} vs {b[k]}")
        print("codec: compress (codes, zstd, sparse, 3 ranks) byte-identical; decompress and "
              "eval the same")
    r = run(2, "compress", "--append", "-o", path("c-np0.bcae"), data)
    check(r.returncode == 2 and "--append runs as one process" in r.stderr, f"--append: {r.stderr}")
    r = run(2, "inspect", path("c-np0.bcae"))
    check(r.returncode == 2 and "runs as one process" in r.stderr, f"inspect on 2 ranks: {r.stderr}")
else:
    sys.exit(f"unknown test {what}")

if failures:
    sys.exit(f"{failures} check(s) failed")
print(f"mpi_test {what}: all checks passed")
