"""CLI test of `bcae train` and `bcae forward`: checkpoints resume to the identical
trajectory (mid-epoch, at an epoch boundary, and after Ctrl-C), the log's format, --init,
forward's outputs and --half, and clear errors on bad input.

Usage: cli_train.py BCAE_BINARY WORK_DIR   (run with /usr/bin/python3: needs numpy)
"""
import csv
import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import time

try:
    import numpy as np
except ImportError:
    sys.exit("cli_train: numpy is missing: install Debian's python3-numpy")

bcae, work = sys.argv[1], sys.argv[2]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what)


def run(*args):
    r = subprocess.run([bcae, *args], capture_output=True, text=True)
    return r


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "data")
r = run("simulate", "--events", "1", "--seed", "3", "--out", data, "-q", "--test-fraction", "0")
check(r.returncode == 0, "simulate: " + r.stderr)

# A small model keeps this quick: BCAE-2D(3, 3, 3), batch 2, 4 steps an epoch.
common = ["train", "--data", data, "--m", "3", "--n", "3", "--d", "3", "--batch-size", "2",
          "--batches-per-epoch", "4", "--validation-batches-per-epoch", "0", "--seed", "5",
          "--num-warmup-epochs", "1", "--sched-steps", "1", "--sched-gamma", "0.5",
          "--threads", "2", "-q"]


def path(name):
    return os.path.join(work, name)


# Run A: 3 epochs (12 steps) straight through.
r = run(*common, "--num-epochs", "3", "--out", path("a.safetensors"), "--log", path("a.csv"))
check(r.returncode == 0, "train A: " + r.stderr)
rows = list(csv.DictReader(open(path("a.csv"))))
check(len(rows) == 12, f"12 log rows, got {len(rows)}")
check(list(rows[0].keys()) == ["epoch", "step", "lr", "loss", "loss_seg", "loss_reg", "coef"],
      "log columns")
check([int(x["step"]) for x in rows] == list(range(1, 13)), "steps 1..12")
lrs = [float(x["lr"]) for x in rows]
check(lrs[0] == lrs[3] and abs(lrs[4] - 0.5 * lrs[0]) < 1e-9 and abs(lrs[8] - 0.25 * lrs[0]) < 1e-9,
      f"schedule: warmup 1 epoch, then x0.5 an epoch: {lrs}")
c0 = float(rows[0]["coef"])
seg0, reg0 = float(rows[0]["loss_seg"]), float(rows[0]["loss_reg"])
check(abs(c0 - (0.5 * 2000 + reg0 / seg0) / 1.5) < 1e-3 * c0, "first coefficient update")
check(abs(float(rows[0]["loss"]) - (reg0 + c0 * seg0)) < 1e-5 * float(rows[0]["loss"]),
      "loss = reg + coef * seg")

# Run B: stopped mid-epoch at step 6, resumed to step 9 (a checkpoint every 3 steps), then
# resumed again to the end. Same log rows and the same final weights, bit for bit.
ck = path("b.ckpt")
r = run(*common, "--num-epochs", "3", "--out", path("b.safetensors"), "--log", path("b.csv"),
        "--checkpoint", ck, "--checkpoint-every", "3", "--max-steps", "6")
check(r.returncode == 0, "train B1: " + r.stderr)
r = run(*common, "--num-epochs", "3", "--out", path("b.safetensors"), "--log", path("b.csv"),
        "--checkpoint", ck, "--resume", ck, "--max-steps", "9")
check(r.returncode == 0, "train B2: " + r.stderr)
r = run(*common, "--num-epochs", "3", "--out", path("b.safetensors"), "--log", path("b.csv"),
        "--checkpoint", ck, "--resume", ck)
check(r.returncode == 0, "train B3: " + r.stderr)


def same_as_a(run_name, what):
    """The run's log and final weights equal the uninterrupted run A's, bit for bit."""
    check(open(path("a.csv")).read() == open(path(run_name + ".csv")).read(),
          what + ": log identical to the uninterrupted one")
    check(filecmp.cmp(path("a.safetensors"), path(run_name + ".safetensors"), shallow=False),
          what + ": final weights identical")


same_as_a("b", "resumed")

# Run I: Ctrl-C (SIGINT) once the log shows a step ends the run after the step under way,
# with a checkpoint and the model (exit 130); resumed, it ends where run A did, bit for bit.
# It is started with 1000 epochs, so that no delay of the signal lets it finish first (the
# schedule depends on the epoch, not on their number, and a checkpoint does not keep it).
cki = path("i.ckpt")
argv_i = [bcae, *common, "--num-epochs", "1000", "--out", path("i.safetensors"), "--log",
          path("i.csv"), "--checkpoint", cki]


def logged_steps(name):
    if not os.path.exists(name):
        return 0
    with open(name) as f:
        return max(len(f.read().splitlines()) - 1, 0)


proc = subprocess.Popen(argv_i, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline and proc.poll() is None and logged_steps(path("i.csv")) < 1:
    time.sleep(0.005)
proc.send_signal(signal.SIGINT)
out, err = proc.communicate(timeout=120)
m = re.search(r"interrupted \(SIGINT\) after step (\d+)", err)
check(proc.returncode == 130, f"SIGINT: exit 130, got {proc.returncode}: {err}")
check(m is not None and 1 <= int(m.group(1)) < 12, "SIGINT: says the step it stopped after: " + err)
if m:
    k = int(m.group(1))
    check(logged_steps(path("i.csv")) == k, f"SIGINT: the log holds the {k} steps run")
    check(os.path.exists(cki) and os.path.exists(path("i.safetensors")),
          "SIGINT: checkpoint and model written")
    check("--resume " + cki in err, "SIGINT: tells how to continue")
r = run(*common, "--num-epochs", "3", "--out", path("i.safetensors"), "--log", path("i.csv"),
        "--checkpoint", cki, "--resume", cki)
check(r.returncode == 0, "train I resumed: " + r.stderr)
same_as_a("i", "resumed after SIGINT")

# A run that died after its last checkpoint had logged steps the resumed run takes again:
# resuming drops them (and a row cut short), so the log still equals the uninterrupted one.
ckc, ck3 = path("c.ckpt"), path("c3.ckpt")
r = run(*common, "--num-epochs", "3", "--out", path("c.safetensors"), "--log", path("c.csv"),
        "--checkpoint", ckc, "--checkpoint-every", "3", "--max-steps", "3")
check(r.returncode == 0, "train C1: " + r.stderr)
shutil.copyfile(ckc, ck3)
r = run(*common, "--num-epochs", "3", "--out", path("c.safetensors"), "--log", path("c.csv"),
        "--checkpoint", ckc, "--resume", ckc, "--max-steps", "8")
check(r.returncode == 0, "train C2: " + r.stderr)
with open(path("c.csv"), "a") as fh:
    fh.write("2,9,0.0")
r = run(*common, "--num-epochs", "3", "--out", path("c.safetensors"), "--log", path("c.csv"),
        "--checkpoint", ckc, "--resume", ck3)
check(r.returncode == 0, "train C3 (from step 3): " + r.stderr)
check(open(path("a.csv")).read() == open(path("c.csv")).read(),
      "a log resumed from an older checkpoint holds each step once, as uninterrupted")

# Resuming with another batch size would not continue the trajectory: refused.
other = list(common)
other[other.index("--batch-size") + 1] = "4"
r = run(*other, "--num-epochs", "3", "--out", path("c.safetensors"), "--resume", ck)
check(r.returncode == 1 and "batch_size" in r.stderr, "resume with another batch size refused: "
      + r.stderr)

# Mixed precision (--precision bf16, docs/PRECISION.md): the checkpoint records it, a resume
# in another precision is refused, and a bf16 run resumes to its own identical trajectory,
# which follows fp32's closely (test_train_bf16 bounds it) without equalling it.
r = run(*common, "--num-epochs", "3", "--out", path("c.safetensors"), "--resume", ck,
        "--precision", "bf16")
check(r.returncode == 1 and "precision" in r.stderr and "fp32" in r.stderr,
      "resume of an fp32 checkpoint in bf16 refused: " + r.stderr)
bf = common + ["--num-epochs", "1", "--precision", "bf16"]
r = run(*bf, "--out", path("h.safetensors"), "--log", path("h.csv"))
check(r.returncode == 0, "train bf16: " + r.stderr)
ckh = path("h2.ckpt")
r = run(*bf, "--out", path("h2.safetensors"), "--log", path("h2.csv"), "--checkpoint", ckh,
        "--max-steps", "2")
check(r.returncode == 0, "train bf16 to step 2: " + r.stderr)
r = run(*common, "--num-epochs", "1", "--out", path("h2.safetensors"), "--resume", ckh)
check(r.returncode == 1 and "bf16" in r.stderr, "resume of a bf16 checkpoint in fp32 refused: "
      + r.stderr)
r = run(*bf, "--out", path("h2.safetensors"), "--log", path("h2.csv"), "--checkpoint", ckh,
        "--resume", ckh)
check(r.returncode == 0, "train bf16 resumed: " + r.stderr)
if r.returncode == 0:
    check(open(path("h.csv")).read() == open(path("h2.csv")).read(),
          "bf16: resumed log identical to the uninterrupted one")
    lb = [float(x["loss"]) for x in csv.DictReader(open(path("h.csv")))]
    lf = [float(x["loss"]) for x in rows[:4]]
    rel = max(abs(b / f - 1) for b, f in zip(lb, lf))
    check(len(lb) == 4 and 0 < rel < 0.05, f"bf16 losses near fp32's, not equal: {rel:.3g}")
r = run("train", "--data", data, "--out", path("x.safetensors"), "--arch", "bcae-ht",
        "--precision", "bf16", "--max-steps", "1", "--validation-batches-per-epoch", "0", "-q")
check(r.returncode == 1 and "bf16" in r.stderr, "bf16 training of bcae-ht refused: " + r.stderr)

# --init starts from given weights: one step from A's weights differs from A's weights.
r = run(*common, "--num-epochs", "1", "--max-steps", "1", "--init", path("a.safetensors"),
        "--out", path("d.safetensors"))
check(r.returncode == 0, "train --init: " + r.stderr)
check(not filecmp.cmp(path("a.safetensors"), path("d.safetensors"), shallow=False),
      "--init then one step changes the weights")
r = run(*common, "--num-epochs", "1", "--m", "4", "--init", path("a.safetensors"),
        "--out", path("e.safetensors"))
check(r.returncode == 1 and "m=3 n=3 d=3" in r.stderr, "--init of another shape refused: "
      + r.stderr)

# forward: shapes, probabilities, recon = reg * (seg > 0.5); --half changes the code only
# by fp16 rounding.
wedges = [os.path.join(data, "outer", "12-2_0-0", "sim3_000000.npy"),
          os.path.join(data, "outer", "12-2_7-1", "sim3_000000.npy"),
          os.path.join(data, "outer", "12-2_2-0", "sim3_000000.npy")]
r = run("forward", "--model", path("a.safetensors"), "--out", path("fw"), "--batch", "2",
        *wedges)
check(r.returncode == 0, "forward: " + r.stderr)
code = np.load(path("fw/code.npy"))
seg, reg, rec = (np.load(path(f"fw/{k}.npy")) for k in ("seg", "reg", "recon"))
check(code.shape == (3, 32, 24, 32) and code.dtype == np.float32, f"code shape {code.shape}")
check(seg.shape == reg.shape == rec.shape == (3, 16, 192, 249), "head shapes")
check(seg.min() >= 0 and seg.max() <= 1, "seg in [0, 1]")
check(reg.min() >= 6, "reg = 6 + 3 exp(r) >= 6")
check(np.array_equal(rec, reg * (seg > 0.5)), "recon = reg * (seg > 0.5)")
# The last wedge ran in a padded batch of 2: it must equal a run of its own.
r = run("forward", "--model", path("a.safetensors"), "--out", path("fw1"), wedges[2])
check(r.returncode == 0, "forward one wedge")
check(np.allclose(np.load(path("fw1/code.npy"))[0], code[2], rtol=1e-5, atol=1e-6),
      "batching does not change a wedge's code")
r = run("forward", "--model", path("a.safetensors"), "--out", path("fwh"), "--half", *wedges)
ch = np.load(path("fwh/code.npy"))
check(r.returncode == 0 and np.array_equal(ch, code.astype(np.float16).astype(np.float32)),
      "--half rounds the code to fp16")

# eval: compress + decompress in memory; its metrics equal those of forward --half's
# reconstruction computed here with NumPy (the reference's formulas), wedge by wedge.
import json  # noqa: E402
csvp = path("eval.csv")
r = run("eval", "--model", path("a.safetensors"), "--data", data, "--split", "train",
        "--limit", "3", "--json", "--csv", csvp)
check(r.returncode == 0, "eval: " + r.stderr)
ev = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
check(set(ev) >= {"occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall", "ratio",
                  "wedges", "encoder_wedges_per_s"}, f"eval JSON keys {sorted(ev)}")
check(ev.get("ratio") == 31.125 and ev.get("wedges") == 3, "eval ratio 31.125, 3 wedges")
rows = list(csv.DictReader(open(csvp)))
check(len(rows) == 3, "eval CSV rows")
firsts = [os.path.join(data, "outer", x["path"]) for x in rows]
r = run("forward", "--model", path("a.safetensors"), "--out", path("fwe"), "--half", *firsts)
rec = np.load(path("fwe/recon.npy")).astype(np.float64)
for i, row in enumerate(rows):
    x = np.log2(np.load(firsts[i]).astype(np.float64) + 1).transpose(2, 0, 1)
    v = rec[i]
    mse = ((x - v) ** 2).mean()
    ref = {"occupancy": (x > 0).mean(), "mse": mse, "mae": np.abs(x - v).mean(),
           "psnr": x.max() / np.sqrt(mse),
           "precision": ((v > 0) & (x > 0)).sum() / max((v > 0).sum(), 1),
           "recall": ((v > 0) & (x > 0)).sum() / (x > 0).sum()}
    for k, want in ref.items():
        got = float(row[k])
        check(abs(got - want) <= 2e-4 * max(1.0, abs(want)),
              f"eval {k} of {row['path']}: {got} vs {want}")
# Reduced-precision encoders: the same pipeline, the code within their precision of
# forward's fp32 code, and their eval metrics near fp32's.
for prec, tol in (("bf16", 0.02), ("int8", 0.08)):
    r = run("forward", "--model", path("a.safetensors"), "--out", path("fw" + prec),
            "--precision", prec, *wedges)
    cp = np.load(path(f"fw{prec}/code.npy")) if r.returncode == 0 else np.zeros_like(code)
    rel = np.sqrt(((cp - code) ** 2).mean() / (code ** 2).mean())
    check(r.returncode == 0 and 1e-6 < rel <= tol,
          f"forward --precision {prec}: rms relative code error {rel:.4g} in (1e-6, {tol}]")
    flag = ["--half"] if prec == "bf16" else ["--precision", prec]
    r = run("eval", "--model", path("a.safetensors"), "--data", data, "--split", "train",
            "--limit", "3", "--json", *flag)
    ep = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    check(ep.get("encoder_precision") == prec and
          abs(ep.get("mae", 1e9) - ev.get("mae", 0)) <= 0.1 * ev.get("mae", 0),
          f"eval {flag}: precision {ep.get('encoder_precision')}, MAE {ep.get('mae')} vs "
          f"fp32 {ev.get('mae')}")
r = run("eval", "--model", path("a.safetensors"), "--data", data, "--precision", "fp8")
check(r.returncode == 2 and "fp8" in r.stderr, "eval: unknown precision is a usage error")
r = run("eval", "--model", path("a.safetensors"), "--data", data, "--split", "nosuch")
check(r.returncode == 1 and "nosuch" in r.stderr, "eval: missing split named")

# threshold: its pooled precision/recall equal NumPy's from forward --half's classifier
# probabilities (over the same three wedges), the break-even threshold makes them meet, and
# --write stores it: eval with the written model reports the rates at that threshold.
r = run("threshold", "--model", path("a.safetensors"), "--data", data, "--split", "train",
        "--limit", "3", "--json", "-q")
check(r.returncode == 0, "threshold: " + r.stderr)
th = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
segs = np.load(path("fwe/seg.npy")).astype(np.float64) if os.path.exists(path("fwe/seg.npy")) \
    else None
check(segs is not None, "forward writes seg.npy")
if segs is not None and th:
    truth = np.stack([np.load(f).transpose(2, 0, 1) > 0 for f in firsts])
    check(th.get("hits") == int(truth.sum()) and th.get("voxels") == truth.size,
          f"threshold counts {th.get('hits')}/{th.get('voxels')} vs {truth.sum()}/{truth.size}")
    for key in ("current", "breakeven"):
        h = th[key]["threshold"]
        called = segs >= h
        p = (called & truth).sum() / max(called.sum(), 1)
        rc_ = (called & truth).sum() / truth.sum()
        check(abs(th[key]["precision"] - p) <= 2e-3 and abs(th[key]["recall"] - rc_) <= 2e-3,
              f"threshold {key} h={h}: P/R {th[key]['precision']}/{th[key]['recall']} vs "
              f"NumPy {p:.4f}/{rc_:.4f}")
    b = th["breakeven"]
    check(abs(b["precision"] - b["recall"]) <= 0.02, f"break-even P {b['precision']} R {b['recall']}")
    r = run("threshold", "--model", path("a.safetensors"), "--data", data, "--split", "train",
            "--limit", "3", "--write", path("t.safetensors"), "-q")
    r2 = run("eval", "--model", path("t.safetensors"), "--data", data, "--split", "train",
             "--limit", "3", "--json", "-q")
    et = json.loads(r2.stdout.strip().splitlines()[-1]) if r2.returncode == 0 else {}
    check(r.returncode == 0 and r2.returncode == 0 and
          abs(et.get("precision", 0) - et.get("recall", 1)) <=
          abs(ev.get("precision", 0) - ev.get("recall", 1)) + 0.02,
          f"eval with the written threshold: P {et.get('precision')} R {et.get('recall')}")
r = run("threshold", "--model", path("a.safetensors"), "--set", "0.3", "--write",
        path("t3.safetensors"))
r2 = run("threshold", "--model", path("t3.safetensors"), "--data", data, "--split", "train",
         "--limit", "1", "--json", "-q")
t3 = json.loads(r2.stdout.strip().splitlines()[-1]) if r2.returncode == 0 else {}
check(r.returncode == 0 and abs(t3.get("current", {}).get("threshold", 0) - 0.3) < 1e-6,
      "threshold --set 0.3 stored in the metadata")
for args in (["threshold", "--model", path("a.safetensors")],
             ["threshold", "--model", path("a.safetensors"), "--set", "1.5", "--write", "x"],
             ["threshold", "--model", path("a.safetensors"), "--set", "0.4"],
             ["threshold", "--model", path("a.safetensors"), "--data", data, "--bins", "1"]):
    r = run(*args)
    check(r.returncode == 2 and r.stderr, f"usage error {args}: {r.returncode}")

# compress / decompress: the container holds forward's code rounded to fp16 (read back by
# the independent reader written from docs/FORMAT.md), decompress gives forward --half's
# reconstruction as ADC, and a container is refused by another model unless
# --model-mismatch-ok.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcae_reader  # noqa: E402
ctr = path("w.bcae")
r = run("compress", "--model", path("a.safetensors"), "-o", ctr, "--batch", "2", "-q", *wedges)
check(r.returncode == 0 and "ratio" in r.stdout, "compress: " + r.stderr)
hdr, recs = bcae_reader.read(ctr)
check(len(recs) == 3, "3 records")
for i, rec in enumerate(recs):
    check(np.array_equal(rec["code"], code[i].astype(np.float16)),
          f"record {i}: the fp16 code of forward's code.npy")
check(os.path.getsize(ctr) < 3 * 192 * 249 * 16 * 2 / 31, "file ratio >= 31")
r = run("compress", "--model", path("a.safetensors"), "-o", path("wh.bcae"), "--half", "-q",
        *wedges)
hh, rh = bcae_reader.read(path("wh.bcae")) if r.returncode == 0 else (None, [])
check(len(rh) == 3 and all(np.allclose(x["code"].astype(np.float32), code[i], rtol=0.05,
                                       atol=0.05 * np.abs(code[i]).max())
                           for i, x in enumerate(rh)),
      "compress --half: fp16 codes close to the fp32 encoder's")
r = run("decompress", "--model", path("a.safetensors"), "-o", path("dec"), "--batch", "2", "-q",
        ctr)
check(r.returncode == 0, "decompress: " + r.stderr)
rech = np.load(path("fwh/recon.npy")).astype(np.float64)
for i, w in enumerate(wedges):
    got = np.load(os.path.join(path("dec"), w.lstrip("/")))
    want = np.clip(np.rint(np.exp2(rech[i]) - 1), 0, 1023).transpose(1, 2, 0)
    diff = np.abs(got.astype(np.int64) - want)
    check(got.dtype == np.uint16 and diff.max() <= 1,
          f"decompressed wedge {i} = forward --half's reconstruction as ADC: max diff "
          f"{diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}, "
          f"{(diff > 1).sum()} voxels")
r = run("decompress", "--model", path("d.safetensors"), "-o", path("dec2"), "-q", ctr)
check(r.returncode == 1 and "w.bcae" in r.stderr and "--model-mismatch-ok" in r.stderr,
      "another model is refused: " + r.stderr)
r = run("decompress", "--model", path("d.safetensors"), "-o", path("dec2"), "-q",
        "--model-mismatch-ok", "--output", "log", ctr)
check(r.returncode == 0 and np.load(os.path.join(path("dec2"), wedges[0].lstrip("/"))).dtype
      == np.float32, "--model-mismatch-ok decodes; --output log writes float32")
r = run("compress", "--model", path("a.safetensors"), "-o", path("dup.bcae"), wedges[0],
        wedges[0])
check(r.returncode == 1 and "both be stored" in r.stderr and not os.path.exists(path("dup.bcae")),
      "two inputs stored under one name are refused")
with open(ctr, "r+b") as fh:
    fh.seek(os.path.getsize(ctr) // 2)
    b = fh.read(1)
    fh.seek(-1, 1)
    fh.write(bytes([b[0] ^ 0x10]))
r = run("decompress", "--model", path("a.safetensors"), "-o", path("dec3"), "-q", ctr)
check(r.returncode == 1 and "record" in r.stderr, "a flipped bit is caught: " + r.stderr)

# Errors: a missing model, a non-model file, a malformed wedge; usage.
r = run("forward", "--model", path("nope.safetensors"), "--out", path("x"), wedges[0])
check(r.returncode == 1 and "nope.safetensors" in r.stderr, "missing model named")
r = run("forward", "--model", wedges[0], "--out", path("x"), wedges[0])
check(r.returncode == 1 and wedges[0] in r.stderr, "a .npy is not a model")
bad = path("bad.npy")
np.save(bad, np.zeros((192, 249, 15), np.uint16))
r = run("forward", "--model", path("a.safetensors"), "--out", path("x"), bad)
check(r.returncode == 1 and "bad.npy" in r.stderr, "wrong-shape wedge named")
for args in (["forward"], ["forward", "--model", path("a.safetensors"), wedges[0]],
             ["train", "--data", data], ["train", "--out", "x"], ["train", "--bogus"],
             ["train", "--data", data, "--out", "x", "--arch", "bcae-3d"],
             ["train", "--data", data, "--out", "x", "--arch", "bcae++", "--m", "3"],
             ["train", "--data", data, "--out", "x", "--arch", "bcae-ht", "--features", "2,4"],
             ["train", "--data", data, "--out", "x", "--features", "2,4,4,8"],
             ["train", "--data", data, "--out", "x", "--batch-size", "0"],
             ["train", "--data", data, "--out", "x", "--precision", "int8"],
             ["train", "--data", data, "--out", "x", "--precision", "fp8"]):
    r = run(*args)
    check(r.returncode == 2 and r.stderr, f"usage error {args}: {r.returncode}")
r = run("train", "--data", path("nowhere"), "--out", path("x.safetensors"), "-q")
check(r.returncode == 1 and "nowhere" in r.stderr, "missing dataset named")

shutil.rmtree(work, ignore_errors=True)
print(f"cli_train: {failures} failed")
sys.exit(1 if failures else 0)
