#!/usr/bin/python3
"""CLI test of --device (docs/CUDA.md): `--device cuda` fails with exit 1 and a
message naming CUDA (no build can run the CUDA backend yet: its operations wait
on issue 9), `--device cpu` works, an unknown device is a usage error (exit 2),
and `--device auto` runs on the CPU, saying so on stderr only in a CUDA build.

Usage: cli_device.py BCAE_BINARY MODEL WORK_DIR HAVE_CUDA(0|1)
"""
import json
import os
import shutil
import subprocess
import sys

bcae, model, work, have_cuda = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what)


def run(*args):
    return subprocess.run([bcae, *args], capture_output=True, text=True, timeout=300)


def describe(r):
    return f"rc {r.returncode}, stderr {r.stderr[:300]!r}"


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "data")
r = run("simulate", "--events", "1", "--seed", "3", "--out", data, "-q", "--test-fraction", "0",
        "--threads", "2")
check(r.returncode == 0, "simulate: " + describe(r))
wedges = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(data) for f in fs
                if f.endswith(".npy"))[:2]
check(len(wedges) == 2, f"two wedge files, got {len(wedges)}")
ctr = os.path.join(work, "a.bcae")
small = ["--threads", "2", "--batch", "2"]

# Every verb with --device: cuda fails cleanly (exit 1, one clear message), bogus is a
# usage error that names the value.
cases = {
    "eval": ["--model", model, "--data", data, "--split", "train", "--limit", "2", "-q"],
    "compress": ["--model", model, "-o", os.path.join(work, "cuda.bcae"), "-q", *wedges],
    "forward": ["--model", model, "--out", os.path.join(work, "fw"), *wedges],
    "bench": ["--model", model, "-s", "0.1"],
    "train": ["--data", data, "--m", "3", "--n", "3", "--d", "3", "--num-epochs", "1",
              "--batches-per-epoch", "1", "--validation-batches-per-epoch", "0",
              "--out", os.path.join(work, "t.safetensors"), "-q"],
}
for verb, args in cases.items():
    r = run(verb, "--device", "cuda", *small[:2], *args)
    check(r.returncode == 1 and "CUDA" in r.stderr and r.stderr.startswith(f"bcae {verb}: "),
          f"{verb} --device cuda exits 1 naming CUDA: {describe(r)}")
    check(r.stderr.count("\n") == 1, f"{verb} --device cuda: one line on stderr: {describe(r)}")
    if not have_cuda:
        check("built without CUDA" in r.stderr, f"{verb} --device cuda, CPU build: {describe(r)}")
    r = run(verb, "--device", "bogus", *args)
    check(r.returncode == 2 and "bogus" in r.stderr, f"{verb} --device bogus exits 2: {describe(r)}")
    r = run(verb, "--device", *args[:0])
    check(r.returncode == 2, f"{verb} --device without a value exits 2: {describe(r)}")
    r = run(verb, "--help")
    check(r.returncode == 0 and "--device" in r.stdout, f"{verb} --help lists --device")

# --device cpu works and gives the same numbers as auto (which runs on the CPU here).
r_cpu = run("eval", "--device", "cpu", *small, *cases["eval"], "--json")
check(r_cpu.returncode == 0 and r_cpu.stderr == "", f"eval --device cpu: {describe(r_cpu)}")
r_auto = run("eval", *small, *cases["eval"], "--json")
check(r_auto.returncode == 0, f"eval (auto): {describe(r_auto)}")
try:
    j_cpu, j_auto = json.loads(r_cpu.stdout), json.loads(r_auto.stdout)
    check(all(j_cpu[k] == j_auto[k] for k in ("mse", "mae", "precision", "recall")),
          f"eval: cpu and auto agree: {j_cpu} vs {j_auto}")
except (ValueError, KeyError) as e:
    check(False, f"eval --json output: {e}: {r_cpu.stdout!r} {r_auto.stdout!r}")
fallback = "no usable CUDA device"
if have_cuda:
    check(r_auto.stderr.count(fallback) == 1 and "running on the CPU" in r_auto.stderr,
          f"eval auto in a CUDA build says it falls back: {describe(r_auto)}")
else:
    check(r_auto.stderr == "", f"eval auto in a CPU build says nothing: {describe(r_auto)}")

r = run("compress", "--device", "cpu", *small, "--model", model, "-o", ctr, "-q", *wedges)
check(r.returncode == 0 and os.path.getsize(ctr) > 0, f"compress --device cpu: {describe(r)}")
out = os.path.join(work, "out")
r = run("decompress", "--device", "cuda", "--model", model, "-o", out, "-q", ctr)
check(r.returncode == 1 and "CUDA" in r.stderr, f"decompress --device cuda: {describe(r)}")
r = run("decompress", "--device", "cpu", *small, "--model", model, "-o", out, "-q", ctr)
check(r.returncode == 0, f"decompress --device cpu: {describe(r)}")
r = run("decompress", "--device", "bogus", "--model", model, "-o", out, "-q", ctr)
check(r.returncode == 2 and "bogus" in r.stderr, f"decompress --device bogus: {describe(r)}")

if failures:
    print(f"cli_device: {failures} failure(s)")
    sys.exit(1)
print("cli_device: all checks passed")
