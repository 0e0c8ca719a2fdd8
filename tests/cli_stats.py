"""CLI test of `bcae stats`: every statistic against an independent NumPy implementation of
docs/SIMULATOR.md's definitions (on simulated wedges and a hand-built one), the inputs
(files, dataset splits, plain folders), --json, --compare (JSON and wedges), --check, errors.

Usage: cli_stats.py BCAE_BINARY WORK_DIR REFERENCE_JSON   (run with /usr/bin/python3: needs numpy)
"""
import json
import math
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("cli_stats: numpy is missing: install Debian's python3-numpy")

bcae, work, reference = sys.argv[1], sys.argv[2], sys.argv[3]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what)


def run(*args):
    return subprocess.run([bcae, *args], capture_output=True, text=True)


def runs(b, axis):
    """Lengths of the maximal runs of True along axis, each line on its own."""
    b = np.moveaxis(b, axis, -1).reshape(-1, b.shape[axis]).astype(np.int8)
    d = np.diff(np.pad(b, ((0, 0), (1, 1))), axis=1)
    return np.nonzero(d == -1)[1] - np.nonzero(d == 1)[1]


def nearest_rank(sorted_values, p):
    return sorted_values[max(1, math.ceil(p * len(sorted_values))) - 1]


def reference_stats(wedges):
    """docs/SIMULATOR.md, "Statistics", written independently of the C code."""
    occ, vals, zr, ar = [], [], [], []
    iso = pairs = both = 0
    layer = np.zeros(16)
    for w in wedges:
        nz = w > 0
        occ.append(nz.mean())
        vals.append(w[nz])
        zr.append(runs(nz, 1))
        ar.append(runs(nz, 0))
        p = np.pad(nz, 1)
        neigh = (p[:-2, 1:-1, 1:-1] | p[2:, 1:-1, 1:-1] | p[1:-1, :-2, 1:-1] |
                 p[1:-1, 2:, 1:-1] | p[1:-1, 1:-1, :-2] | p[1:-1, 1:-1, 2:])
        iso += int((nz & ~neigh).sum())
        pairs += int(nz[:, :, :-1].sum())
        both += int((nz[:, :, :-1] & nz[:, :, 1:]).sum())
        layer += nz.sum(axis=(0, 1))
    v = np.sort(np.concatenate(vals).astype(np.int64))
    x = np.log2(v + 1.0)
    zr, ar = np.concatenate(zr), np.concatenate(ar)
    hist = np.zeros(16)
    bins = np.minimum(np.floor((x[x >= 6] - 6) / 0.25).astype(int), 15)
    np.add.at(hist, bins, 1)
    return {
        "occupancy_mean": float(np.mean(occ)), "occupancy_min": float(np.min(occ)),
        "occupancy_max": float(np.max(occ)),
        "log_adc_mean": float(x.mean()),
        "log_adc_median": math.log2(nearest_rank(v, 0.5) + 1),
        "log_adc_p90": math.log2(nearest_rank(v, 0.9) + 1),
        "log_adc_p99": math.log2(nearest_rank(v, 0.99) + 1),
        "saturated_fraction": float((v == 1023).mean()),
        "z_run_mean": float(zr.mean()), "z_run_p90": float(nearest_rank(np.sort(zr), 0.9)),
        "z_run_fraction_1": float((zr == 1).mean()),
        "azimuth_run_mean": float(ar.mean()), "azimuth_run_fraction_1": float((ar == 1).mean()),
        "isolated_fraction": iso / len(v), "next_layer_probability": both / pairs,
        "layer15_over_layer0": layer[15] / layer[0],
        "log_adc_hist": list(hist / len(v)), "below_hist": float((x < 6).mean()),
        "wedges": len(wedges),
    }


def same(got, want, what):
    for k, w in want.items():
        g = got.get(k)
        if isinstance(w, list):
            ok = g is not None and len(g) == len(w) and all(abs(a - b) < 1e-9 for a, b in zip(g, w))
        else:
            ok = g is not None and abs(g - w) <= 1e-9 * max(1, abs(w))
        check(ok, f"{what}: {k} = {g}, NumPy reference {w}")


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "data")
r = run("simulate", "--events", "2", "--seed", "3", "--out", data, "-q")
check(r.returncode == 0, "simulate: " + r.stderr)
root = os.path.join(data, "outer")
train = open(os.path.join(root, "train.txt")).read().split()
test = open(os.path.join(root, "test.txt")).read().split()

# The whole dataset (both splits) and one split, against NumPy.
r = run("stats", data, "--json", "-q")
check(r.returncode == 0, "stats --json: " + r.stderr)
got = json.loads(r.stdout)
same(got, reference_stats([np.load(os.path.join(root, p)) for p in train + test]), "dataset")
r = run("stats", data, "--split", "test", "--json", "-q")
got = json.loads(r.stdout)
same(got, reference_stats([np.load(os.path.join(root, p)) for p in test]), "test split")

# One event: simulate leaves test.txt empty, which the default --split all passes over.
one = os.path.join(work, "one")
r = run("simulate", "--events", "1", "--seed", "3", "--out", one, "-q")
r = run("stats", one, "--json", "-q")
check(r.returncode == 0 and json.loads(r.stdout or "{}").get("wedges") == 24,
      "an empty test manifest is passed over: " + r.stderr)

# A plain folder: every .npy below it, whatever the manifests say.
plain = os.path.join(work, "plain")
os.makedirs(os.path.join(plain, "sub"))
shutil.copy(os.path.join(root, test[0]), os.path.join(plain, "a.npy"))
shutil.copy(os.path.join(root, test[1]), os.path.join(plain, "sub", "b.npy"))
open(os.path.join(plain, "notes.txt"), "w").write("not a wedge\n")
r = run("stats", plain, "--json", "-q")
check(r.returncode == 0, "stats on a plain folder: " + r.stderr)
got = json.loads(r.stdout)
same(got, reference_stats([np.load(os.path.join(root, p)) for p in test[:2]]), "plain folder")

# A hand-built wedge with edges, a lone voxel and saturation; files as input.
w = np.zeros((192, 249, 16), np.uint16)
w[10, 5:8, 0] = (64, 100, 1023)
w[50, 100, 15] = 200
w[20:24, 50, 3] = 80
w[30, 30, 7:9] = 70
w[190:192, 248, 0] = 90
w[0:192, 0, 5] = 65          # a run across the whole azimuth
w[7, 0:249, 9] = 1000        # a run along the whole z
hand = os.path.join(work, "hand.npy")
np.save(hand, w)
r = run("stats", hand, hand, "--json", "-q")
check(r.returncode == 0, "stats on files: " + r.stderr)
same(json.loads(r.stdout), reference_stats([w, w]), "hand-built wedge")

# --compare: with the shipped real-data reference, with another set of wedges.
r = run("stats", data, "--compare", reference, "-q")
check(r.returncode == 0, "--compare real reference: " + r.stderr)
for key in ("occupancy_mean", "layer15_over_layer0", "total-variation distance", "9.75-10.00"):
    check(key in r.stdout, f"--compare prints {key}")
ref = json.load(open(reference))
check(len(ref["log_adc_hist"]) == 16 and abs(sum(ref["log_adc_hist"]) - 1) < 0.002,
      "the reference's histogram sums to 1")
r = run("stats", data, "--compare", reference, "--json", "-q")
j = json.loads(r.stdout)
s, rf = j["stats"], j["reference"]
tvd = 0.5 * sum(abs(a - b) for a, b in zip(s["log_adc_hist"], rf["log_adc_hist"]))
check(abs(j["distance"]["tvd"] - tvd) < 1e-9, "tvd = half the L1 distance of the histograms")
rel = (s["log_adc_mean"] - ref["log_adc_mean"]) / ref["log_adc_mean"]
check(abs(j["distance"]["log_adc_mean"]["rel"] - rel) < 1e-12, "relative difference")
check(rf["saturated_fraction"] == ref["saturated_fraction"], "reference read back")
within = abs(s["saturated_fraction"] - 0.0013) <= 0.002
check(j["distance"]["saturated_fraction"]["within"] == within, "small fraction: 0.002 absolute")

r = run("stats", data, "--compare", data, "--check", "--json", "-q")
j = json.loads(r.stdout)
check(r.returncode == 0 and j["distance"]["tvd"] == 0 and j["distance"]["all_within"],
      "a set compared with itself is within tolerance")
r = run("stats", hand, "--compare", data, "--check", "-q")
check(r.returncode == 1 and "NO" in r.stdout, "--check fails outside tolerance")

# Errors.
bad_json = os.path.join(work, "bad.json")
for text, what in (('{"occupancy_mean": 0.1', "truncated"), ('{"occupancy_mean": 0.1}', "no histogram"),
                   ('{"log_adc_hist": [0.5, 0.5]}', "short histogram"), ("[]", "not an object")):
    open(bad_json, "w").write(text)
    r = run("stats", hand, "--compare", bad_json, "-q")
    check(r.returncode == 1 and "bad.json" in r.stderr, f"bad reference ({what}): rc {r.returncode}")
over = w.copy()
over[1, 2, 3] = 1024
np.save(os.path.join(work, "over.npy"), over)
r = run("stats", os.path.join(work, "over.npy"), "-q")
check(r.returncode == 1 and "over.npy" in r.stderr, "a value over 10 bits is refused")
r = run("stats", os.path.join(work, "missing.npy"), "-q")
check(r.returncode == 1 and "missing.npy" in r.stderr, "a missing file is named")
r = run("stats", data, "--split", "nonsense", "-q")
check(r.returncode == 1 and "nonsense" in r.stderr, "a missing split is named")
for bad in ([], [hand, "--check"], [hand, "--bogus"], [hand, "--compare"]):
    r = run("stats", *bad)
    check(r.returncode == 2 and r.stderr, f"usage error for {bad}: rc {r.returncode}")
r = run("stats", "--help")
check(r.returncode == 0 and "--compare" in r.stdout, "--help")

shutil.rmtree(work, ignore_errors=True)
print(f"cli_stats: {failures} failed")
sys.exit(1 if failures else 0)
