#!/usr/bin/python3
"""End-to-end checks of the `bcae` command line: help, exit codes, error
messages, and the machine-readable output of inspect and metrics.

Usage: cli_test.py PATH/TO/bcae
Needs NumPy to write its test files (/usr/bin/python3 on Debian); without it
the test fails rather than skips.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    sys.stderr.write("cli_test.py: NumPy is required (run with /usr/bin/python3); "
                     "failing, not skipping\n")
    sys.exit(1)

VERBS = ("simulate", "inspect", "metrics", "plot")
WEDGE = (192, 249, 16)
INSPECT_KEYS = {"shape", "dtype", "occupancy", "nonzero", "min_nonzero", "max"}
METRICS_KEYS = {"occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall"}

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL", what)
    return bool(cond)


def run(bcae, *args):
    return subprocess.run([bcae, *args], capture_output=True, text=True, check=False,
                          timeout=120)


def describe(proc):
    return f"rc {proc.returncode}, stdout {proc.stdout[:200]!r}, stderr {proc.stderr[:300]!r}"


def close(got, want, rel=1e-9):
    if want is None or (isinstance(want, float) and not math.isfinite(want)):
        return got is None
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    return abs(got - want) <= rel * max(abs(want), 1e-300)


def check_help(bcae):
    for args in (["--help"], ["--version"]):
        p = run(bcae, *args)
        check(p.returncode == 0 and p.stdout.strip(), f"bcae {' '.join(args)}: {describe(p)}")
    p = run(bcae, "--version")
    check(p.stdout.startswith("bcae "), f"--version names the program: {p.stdout!r}")
    for verb in VERBS:
        p = run(bcae, verb, "--help")
        check(p.returncode == 0 and "Usage" in p.stdout,
              f"bcae {verb} --help: {describe(p)}")


def check_usage_errors(bcae, wedge_a, wedge_b):
    p = run(bcae)
    check(p.returncode == 2, f"bcae with no verb exits 2: {describe(p)}")
    p = run(bcae, "frobnicate")
    check(p.returncode == 2 and "frobnicate" in p.stderr, f"unknown verb: {describe(p)}")
    for verb in VERBS:
        p = run(bcae, verb, "--no-such-option")
        check(p.returncode == 2 and "--no-such-option" in p.stderr,
              f"bcae {verb} with an unknown option exits 2: {describe(p)}")
    for args in (["inspect"], ["inspect", wedge_a, wedge_b], ["metrics"],
                 ["metrics", wedge_a], ["metrics", wedge_a, wedge_b, wedge_a]):
        p = run(bcae, *args)
        check(p.returncode == 2 and p.stdout == "",
              f"bcae {' '.join(args)}: wrong argument count exits 2: {describe(p)}")


def check_file_errors(bcae, tmp, wedge):
    missing = os.path.join(tmp, "no-such-file.npy")
    for args in (["inspect", missing], ["inspect", "--json", missing],
                 ["metrics", missing, wedge], ["metrics", "--json", wedge, missing]):
        p = run(bcae, *args)
        check(p.returncode == 1 and missing in p.stderr and p.stdout == "",
              f"bcae {' '.join(args)}: missing file exits 1 naming it: {describe(p)}")

    wrong = os.path.join(tmp, "wrong-shape.npy")
    np.save(wrong, np.zeros((192, 256, 16), np.uint16))
    out_of_range = os.path.join(tmp, "out-of-range.npy")
    bad = np.zeros(WEDGE, np.uint16)
    bad[3, 4, 5] = 1024
    np.save(out_of_range, bad)
    for path in (wrong, out_of_range):
        for args in (["metrics", path, wedge], ["metrics", wedge, path]):
            p = run(bcae, *args)
            check(p.returncode == 1 and path in p.stderr and p.stdout == "",
                  f"bcae {' '.join(args)}: invalid wedge exits 1 naming it: {describe(p)}")

    # Malformed files: each must be a clean failure, never a crash (a
    # negative return code is death by a signal).
    good = open(wedge, "rb").read()
    header_end = good.index(b"\n") + 1
    # Headers that parse but lie (a shape far beyond the data, an unknown
    # dtype) or do not parse at all.
    def with_header(text, data=b"\0" * 64):
        text = text + " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + data
    malformed = {
        "empty": b"",
        "not-npy": b"hello, world\n" * 10,
        "bad-magic": b"\x93NUMPX" + good[6:],
        "truncated-header": good[:40],
        "truncated-data": good[:header_end + 1000],
        "unterminated-dict": with_header(
            "{'descr': '<u2', 'fortran_order': False, 'shape': (192, 249,", good[header_end:]),
        "huge-shape": with_header(
            "{'descr': '<u2', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"),
        "bad-dtype": with_header("{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }"),
        "negative-shape": with_header("{'descr': '<u2', 'fortran_order': False, 'shape': (-2,), }"),
    }
    for name, data in malformed.items():
        path = os.path.join(tmp, f"malformed-{name}.npy")
        with open(path, "wb") as f:
            f.write(data)
        for args in (["inspect", path], ["inspect", "--json", path], ["metrics", path, wedge]):
            p = run(bcae, *args)
            check(p.returncode == 1 and path in p.stderr and p.stdout == "",
                  f"bcae {' '.join(args)}: malformed file exits 1 naming it: {describe(p)}")


def expected_inspect(a):
    nz = a[a != 0]
    return {
        "shape": list(a.shape),
        "dtype": a.dtype.str,
        "occupancy": float(np.count_nonzero(a)) / a.size if a.size else None,
        "nonzero": int(np.count_nonzero(a)),
        "min_nonzero": float(nz.min()) if nz.size else None,
        "max": float(a.max()) if a.size else None,
    }


def check_inspect_json(bcae, tmp, rng):
    arrays = {
        "wedge": np.where(rng.random(WEDGE) < 0.108, rng.integers(64, 1024, WEDGE), 0)
                   .astype(np.uint16),
        "float32": (rng.normal(0, 3, (7, 11)) * (rng.random((7, 11)) < 0.5)).astype(np.float32),
        "float64-fortran": np.asfortranarray(rng.normal(5, 1, (3, 4, 5))),
        "int16-negative": np.array([0, -5, 3, 0, -32768, 32767], np.int16),
        "all-zero": np.zeros((4, 4), np.int32),
        "bool": rng.random((10,)) < 0.3,
        "uint8": np.arange(256, dtype=np.uint8),
        "empty": np.zeros((0, 3), np.float32),
        "uint64": np.array([[0, 2**40], [7, 0]], np.uint64),
    }
    for name, a in arrays.items():
        path = os.path.join(tmp, f"inspect-{name}.npy")
        np.save(path, a)
        p = run(bcae, "inspect", "--json", path)
        if not check(p.returncode == 0, f"inspect --json {name}: {describe(p)}"):
            continue
        lines = p.stdout.splitlines()
        check(len(lines) == 1, f"inspect --json {name}: one line, got {p.stdout!r}")
        try:
            got = json.loads(p.stdout)
        except ValueError as e:
            check(False, f"inspect --json {name}: not JSON ({e}): {p.stdout!r}")
            continue
        check(isinstance(got, dict) and set(got) == INSPECT_KEYS,
              f"inspect --json {name}: keys {sorted(got) if isinstance(got, dict) else got}")
        want = expected_inspect(a)
        check(got.get("shape") == want["shape"],
              f"inspect {name}: shape {got.get('shape')} != {want['shape']}")
        check(got.get("dtype") == want["dtype"],
              f"inspect {name}: dtype {got.get('dtype')!r} != {want['dtype']!r}")
        check(got.get("nonzero") == want["nonzero"] and isinstance(got.get("nonzero"), int),
              f"inspect {name}: nonzero {got.get('nonzero')!r} != {want['nonzero']}")
        for key in ("occupancy", "min_nonzero", "max"):
            check(close(got.get(key), want[key]),
                  f"inspect {name}: {key} {got.get(key)!r} != {want[key]!r}")

    # Text mode: says what it found, recognises a wedge, draws a histogram.
    p = run(bcae, "inspect", os.path.join(tmp, "inspect-wedge.npy"))
    check(p.returncode == 0 and "(192, 249, 16)" in p.stdout and "<u2" in p.stdout
          and "yes" in p.stdout and "#" in p.stdout, f"inspect text, wedge: {describe(p)}")
    p = run(bcae, "inspect", os.path.join(tmp, "inspect-float32.npy"))
    check(p.returncode == 0 and "negative" in p.stdout and "no" in p.stdout,
          f"inspect text, float32 with negatives: {describe(p)}")


def check_metrics_json(bcae, tmp, rng):
    a = np.where(rng.random(WEDGE) < 0.1, rng.integers(64, 1024, WEDGE), 0).astype(np.uint16)
    b = a.copy()
    b[rng.random(WEDGE) < 0.05] = 0           # misses
    b[(a == 0) & (rng.random(WEDGE) < 0.01)] = 100  # false hits
    pa, pb = os.path.join(tmp, "metrics-a.npy"), os.path.join(tmp, "metrics-b.npy")
    np.save(pa, a)
    np.save(pb, b)
    x, v = np.log2(a + 1.0), np.log2(b + 1.0)
    mse = np.mean((x - v) ** 2)
    tp = np.count_nonzero((x > 0) & (v > 0))
    want = {
        "occupancy": np.count_nonzero(x) / x.size,
        "mse": mse,
        "mae": np.mean(np.abs(x - v)),
        "psnr": x.max() / np.sqrt(mse),
        "psnr_db": 20 * np.log10(x.max() / np.sqrt(mse)),
        "precision": tp / np.count_nonzero(v),
        "recall": tp / np.count_nonzero(x),
    }
    for args in (["metrics", "--json", pa, pb], ["metrics", pa, pb, "--json"]):
        p = run(bcae, *args)
        check(p.returncode == 0 and len(p.stdout.splitlines()) == 1,
              f"bcae {' '.join(args)}: {describe(p)}")
        try:
            got = json.loads(p.stdout)
        except ValueError as e:
            check(False, f"metrics --json: not JSON ({e}): {p.stdout!r}")
            continue
        check(set(got) == METRICS_KEYS, f"metrics --json keys: {sorted(got)}")
        for key, w in want.items():
            check(close(got.get(key), float(w), 1e-6), f"metrics {key}: {got.get(key)!r} != {w!r}")

    # An exact reconstruction: psnr is infinite, which JSON shows as null.
    p = run(bcae, "metrics", "--json", pa, pa)
    got = json.loads(p.stdout) if p.returncode == 0 else {}
    check(got.get("psnr", 0) is None and got.get("psnr_db", 0) is None and got.get("mse") == 0
          and got.get("precision") == 1 and got.get("recall") == 1,
          f"metrics of identical wedges: {describe(p)}")

    p = run(bcae, "metrics", pa, pb)
    check(p.returncode == 0 and "psnr" in p.stdout and "dB" in p.stdout
          and "precision" in p.stdout, f"metrics text output: {describe(p)}")


def check_inspect_model(bcae):
    """inspect on a weights file: the shipped model's facts, and a checkpoint
    (also safetensors) refused with the loader's reason."""
    models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    model = os.path.join(models, "bcae2d-default.safetensors")
    p = run(bcae, "inspect", "--json", model)
    ok = check(p.returncode == 0, f"inspect --json model: {describe(p)}")
    if ok:
        j = json.loads(p.stdout)
        check(j.get("kind") == "model" and j.get("arch") == "bcae-2d" and
              j.get("code_shape") == [32, 24, 32] and j.get("code_elements") == 24576 and
              close(j.get("ratio"), 31.125, 1e-6) and 0 < j.get("clf_threshold", 0) < 1 and
              j.get("output_shape") == [16, 192, 249] and
              len(j.get("fingerprint", "")) == 64, f"inspect --json model: {j}")
    p = run(bcae, "inspect", model)
    check(p.returncode == 0 and "bcae-2d" in p.stdout and "31.125" in p.stdout,
          f"inspect model: {describe(p)}")
    ckpt = os.path.join(models, "bcae2d-default.ckpt")
    if os.path.exists(ckpt):
        p = run(bcae, "inspect", ckpt)
        check(p.returncode == 1 and "tensors" in p.stderr and p.stdout == "",
              f"inspect a checkpoint: {describe(p)}")


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: cli_test.py PATH/TO/bcae\n")
        return 2
    bcae = sys.argv[1]
    rng = np.random.default_rng(99)
    with tempfile.TemporaryDirectory(prefix="bcae-cli-") as tmp:
        wedge_a = os.path.join(tmp, "a.npy")
        wedge_b = os.path.join(tmp, "b.npy")
        np.save(wedge_a, np.zeros(WEDGE, np.uint16))
        np.save(wedge_b, np.zeros(WEDGE, np.uint16))
        check_help(bcae)
        check_usage_errors(bcae, wedge_a, wedge_b)
        check_file_errors(bcae, tmp, wedge_a)
        check_inspect_json(bcae, tmp, rng)
        check_metrics_json(bcae, tmp, rng)
        check_inspect_model(bcae)
    print(f"cli: {checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
