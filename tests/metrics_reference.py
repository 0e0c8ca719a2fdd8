#!/usr/bin/python3
"""Parity of `bcae metrics --json` with the reference's metric formulas.

The BCAE reference (BNL-DAQ-LDRD/NeuralCompression_v2, train_test/test.py,
get_metrics) computes its per-wedge metrics with torch on log2(ADC+1) values.
This script restates those formulas in NumPy float64, builds random wedge
pairs, saves them as .npy, runs the CLI on them and compares every key to
1e-6 relative. NaN and infinities must come out as JSON null.

Usage: metrics_reference.py PATH/TO/bcae
Run it with an interpreter that has NumPy (/usr/bin/python3 on Debian); without
NumPy it fails rather than skips, so a missing dependency cannot pass as a
green test.
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
    sys.stderr.write(
        "metrics_reference.py: NumPy is required (apt-get install python3-numpy, "
        "run with /usr/bin/python3); failing, not skipping\n")
    sys.exit(1)

SHAPE = (192, 249, 16)
KEYS = ("occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall")
REL = 1e-6


def reference_metrics(orig, recon):
    """The reference's get_metrics, in float64, plus psnr in dB."""
    x = np.log2(orig.astype(np.float64) + 1.0)
    v = np.log2(recon.astype(np.float64) + 1.0)
    true = np.count_nonzero(x > 0)
    pos = np.count_nonzero(v > 0)
    true_pos = np.count_nonzero((x > 0) & (v > 0))
    mse = np.mean((x - v) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        psnr = np.float64(x.max()) / np.sqrt(mse)
        psnr_db = 20.0 * np.log10(psnr)
        precision = np.float64(true_pos) / np.float64(pos)
        recall = np.float64(true_pos) / np.float64(true)
    return {
        "occupancy": true / x.size,
        "mse": float(mse),
        "mae": float(np.mean(np.abs(x - v))),
        "psnr": float(psnr),
        "psnr_db": float(psnr_db),
        "precision": float(precision),
        "recall": float(recall),
    }


def random_wedge(rng, occupancy):
    """Zero-suppressed 10-bit ADC: 0, or a value in [64, 1023]."""
    hits = rng.random(SHAPE) < occupancy
    adc = rng.integers(64, 1024, SHAPE)
    return np.where(hits, adc, 0).astype(np.uint16)


def noisy_reconstruction(rng, orig, miss, false_hit, noise):
    """Keeps most hits with Gaussian ADC noise, drops some, adds some."""
    noisy = orig.astype(np.float64) + rng.normal(0.0, noise, SHAPE)
    recon = np.where(orig > 0, np.clip(np.rint(noisy), 64, 1023), 0)
    recon[(orig > 0) & (rng.random(SHAPE) < miss)] = 0
    extra = (orig == 0) & (rng.random(SHAPE) < false_hit)
    recon[extra] = rng.integers(64, 1024, np.count_nonzero(extra))
    return recon.astype(np.uint16)


def cases(rng):
    a = random_wedge(rng, 0.108)
    yield "realistic", a, noisy_reconstruction(rng, a, 0.09, 0.01, 25.0)
    b = random_wedge(rng, 0.3)
    yield "independent", b, random_wedge(rng, 0.3)
    yield "identical (psnr inf -> null)", a, a.copy()
    yield "empty reconstruction (precision NaN -> null)", a, np.zeros(SHAPE, np.uint16)
    yield "empty original (recall NaN, psnr 0, psnr_db -inf -> null)", \
        np.zeros(SHAPE, np.uint16), b
    yield "both empty", np.zeros(SHAPE, np.uint16), np.zeros(SHAPE, np.uint16)
    c = random_wedge(rng, 0.01)
    c[0, 0, 0] = 1023
    yield "sparse, one saturated voxel", c, noisy_reconstruction(rng, c, 0.5, 0.001, 100.0)
    full = np.full(SHAPE, 1023, np.uint16)
    yield "saturated vs 64", full, np.full(SHAPE, 64, np.uint16)


def run_cli(bcae, a_path, b_path):
    proc = subprocess.run([bcae, "metrics", "--json", a_path, b_path],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"bcae metrics exited {proc.returncode}: {proc.stderr.strip()}")
    lines = proc.stdout.strip().splitlines()
    if len(lines) != 1:
        raise AssertionError(f"expected one JSON line, got {proc.stdout!r}")
    return json.loads(lines[0])


def compare(name, got, want):
    """Returns a list of mismatch messages."""
    errors = []
    if set(got) != set(KEYS):
        errors.append(f"{name}: keys {sorted(got)} != {sorted(KEYS)}")
    for key in KEYS:
        w, g = want[key], got.get(key)
        if not math.isfinite(w):
            if g is not None:
                errors.append(f"{name}: {key} = {g!r}, expected null (reference {w})")
        elif not isinstance(g, (int, float)) or isinstance(g, bool):
            errors.append(f"{name}: {key} = {g!r}, expected {w!r}")
        elif abs(g - w) > REL * max(abs(w), 1e-300):
            errors.append(f"{name}: {key} = {g!r}, reference {w!r} "
                          f"(relative error {abs(g - w) / max(abs(w), 1e-300):.3g})")
    return errors


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: metrics_reference.py PATH/TO/bcae\n")
        return 2
    bcae = sys.argv[1]
    rng = np.random.default_rng(20240611)
    errors = []
    checked = 0
    with tempfile.TemporaryDirectory(prefix="bcae-metrics-") as tmp:
        for i, (name, orig, recon) in enumerate(cases(rng)):
            a_path = os.path.join(tmp, f"orig{i}.npy")
            b_path = os.path.join(tmp, f"recon{i}.npy")
            np.save(a_path, orig)
            np.save(b_path, recon)
            errors += compare(name, run_cli(bcae, a_path, b_path),
                              reference_metrics(orig, recon))
            checked += 1

        # The metrics depend on the values only: the same pair stored with
        # another dtype, byte order or memory order must give the same answer.
        orig, recon = next(iter(cases(np.random.default_rng(7))))[1:]
        want = reference_metrics(orig, recon)
        variants = {
            "int32": lambda a: a.astype(np.int32),
            "big-endian uint16": lambda a: a.astype(">u2"),
            "float32": lambda a: a.astype(np.float32),
            "float64 Fortran order": lambda a: np.asfortranarray(a.astype(np.float64)),
        }
        for vname, convert in variants.items():
            a_path = os.path.join(tmp, "variant_orig.npy")
            b_path = os.path.join(tmp, "variant_recon.npy")
            np.save(a_path, convert(orig))
            np.save(b_path, convert(recon))
            errors += compare(f"stored as {vname}", run_cli(bcae, a_path, b_path), want)
            checked += 1

    for e in errors:
        print("MISMATCH", e)
    print(f"metrics_numpy_parity: {checked} wedge pairs, {len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
