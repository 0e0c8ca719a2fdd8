#!/usr/bin/python3
"""compress / decompress / eval / inspect with 3D models, end to end (ctest cli_3d).

    cli_3d.py BCAE_BINARY WORK_DIR

A random BCAE-HT (log2 input) and a random original BCAE (raw ADC, log = 0), written by our
PyTorch reference, on 6 simulated wedges:
  - compress -> a .bcae whose code shape is the model's ((8, 16, 12, 16), (8, 12, 15, 16));
  - decompress gives uint16 wedges (192, 249, 16) equal to what `forward --half` implies:
    round(2^recon - 1) for log models, round(recon) for raw ones, clamped to [0, 1023];
  - decompress --output log equals forward --half's recon (log2 of it for the raw model);
  - eval --json has SPEC 7's keys, ratio 31.125 (BCAE-HT) and 33.2 (BCAE), and its MAE is
    the mean over the wedges of mean |log2(ADC+1) - log reconstruction|;
  - 3D models refuse a precision other than fp32 in bench.
Exits 0 when everything holds.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "torch_ref"))
import bcae_torch as B  # noqa: E402

bcae, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = 0


def check(cond, what):
    global failures
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    failures += not cond


def run(*args):
    r = subprocess.run([bcae] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        print(f"  `bcae {' '.join(args)}` exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return r


data = os.path.join(work, "data")
run("simulate", "--events", "1", "--seed", "12", "--out", data, "--test-fraction", "1", "-q")
wedges = B.manifest(data, "test")[:6]
torch.manual_seed(5)
for arch, ratio, code_shape in (("bcae-ht", 31.125, [8, 16, 12, 16]),
                                ("bcae", 764928 / 23040, [8, 12, 15, 16])):
    print(f"== {arch}")
    model = B.BCAE3D(arch)
    B.randomize_rezero(model, torch.Generator().manual_seed(6))
    with torch.no_grad():  # a classifier bias that keeps part of the voxels
        getattr(model.decoder, model.decoder.clf_name).layers.decoder_output[0].bias.fill_(0.3)
    mpath = os.path.join(work, f"{arch}.safetensors")
    B.save_model3d(mpath, model)
    ctr = os.path.join(work, f"{arch}.bcae")
    r = run("compress", "--model", mpath, "-o", ctr, "-q", *wedges)
    check(r.returncode == 0, "compress")
    r = run("inspect", "--json", ctr)
    info = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    check(r.returncode == 0 and info.get("code_shape", info.get("shape")) == code_shape
          or str(code_shape[1:]).replace(" ", "") in r.stdout.replace(" ", ""),
          f"inspect shows the code shape {code_shape}")
    out = os.path.join(work, f"out_{arch}")
    r = run("decompress", "--model", mpath, "-o", out, "-q", ctr)
    check(r.returncode == 0, "decompress")
    outl = os.path.join(work, f"outlog_{arch}")
    r = run("decompress", "--model", mpath, "-o", outl, "--output", "log", "-q", ctr)
    fw = os.path.join(work, f"fw_{arch}")
    r = run("forward", "--model", mpath, "--out", fw, "--half", *wedges)
    recon = np.load(os.path.join(fw, "recon.npy"))[:, 0].astype(np.float64)
    if arch != "bcae":
        recon = np.transpose(recon, (0, 2, 3, 1))  # (layer, azimuth, z) -> file order
        expect = np.clip(np.rint(np.exp2(recon) - 1), 0, 1023)
        expect_log = recon
    else:
        expect = np.clip(np.rint(recon), 0, 1023)
        expect_log = np.log2(np.maximum(recon, 0) + 1)
    got, got_log = [], []
    for w in wedges:
        rel = os.path.relpath(w, B.dataset_root(data))
        cands = [os.path.join(out, rel), os.path.join(out, os.path.basename(w))]
        p = next((c for c in cands if os.path.exists(c)), None)
        if p is None:
            for root, _, files in os.walk(out):
                for f in files:
                    if f == os.path.basename(w) and os.path.basename(root) == \
                            os.path.basename(os.path.dirname(w)):
                        p = os.path.join(root, f)
        got.append(np.load(p))
        got_log.append(np.load(p.replace(out, outl)))
    got, got_log = np.stack(got), np.stack(got_log)
    check(got.dtype == np.uint16 and got.shape == (6, 192, 249, 16), f"decompressed {got.dtype}"
          f"{got.shape}")
    check(int(got.max()) <= 1023, "values within [0, 1023]")
    mism = np.count_nonzero(got.astype(np.int64) != expect.astype(np.int64))
    # Rounding ties and float32 vs float64 of 2^x - 1 may move a voxel by one count.
    off = np.max(np.abs(got.astype(np.int64) - expect.astype(np.int64)))
    check(off <= 1 and mism < 1e-4 * got.size,
          f"decompress = clamp(round(...)) of forward --half ({mism} voxels differ, by <= {off})")
    check(np.max(np.abs(got_log - expect_log)) < 1e-3, "--output log = forward --half's recon")
    r = run("eval", "--model", mpath, "--data", data, "--split", "test", "--limit", "6",
            "--json", "-q")
    ev = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    keys = {"occupancy", "mse", "mae", "psnr", "psnr_db", "precision", "recall", "ratio",
            "wedges", "encoder_wedges_per_s"}
    check(keys <= set(ev), f"eval --json keys {sorted(ev)}")
    check(abs(ev.get("ratio", 0) - ratio) < 1e-3, f"ratio {ev.get('ratio')} = {ratio:.4g}")
    # eval's MAE is the mean over wedges of mean |log2(x+1) - v|, v the log reconstruction.
    x = np.stack([np.log2(B.load_wedge(w).astype(np.float64) + 1) for w in wedges])
    mae = float(np.mean(np.abs(x - got_log).reshape(6, -1).mean(axis=1)))
    check(abs(ev.get("mae", -1) - mae) < 1e-4 * max(1, mae), f"eval mae {ev.get('mae')} = {mae:.6g}")
r = run("bench", "--arch", "bcae-ht", "--precision", "bf16")
check(r.returncode == 2 and "bf16" in r.stderr, "bench --precision bf16 refused on a 3D model")
print("cli_3d:", "PASS" if failures == 0 else f"FAIL ({failures})")
sys.exit(1 if failures else 0)
