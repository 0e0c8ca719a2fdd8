#!/usr/bin/python3
"""`bcae forward` on 3D models against our PyTorch reference (ctest torch_parity_forward3d).

    parity_forward3d.py BCAE_BINARY WORK_DIR [ARCH...]      (default: bcae++ bcae-ht)

For each architecture: a random model (PyTorch's default initialisation, every rezero_alpha
random non-zero), two simulated wedges, the float64 reference outputs, `bcae forward` with
the same weights file, and the checks of parity_forward.py: code, seg, reg and recon each
max|c - ref| / max|ref| <= 1e-4; segmentation mask flips only within 1e-4 of the threshold
and fewer than 0.01% of the voxels. Also checks the output shapes of the issue:
code (N, 8, 16, 12, 16), outputs (N, 1, 16, 192, 249) (bcae: (N, 8, 12, 15, 16) and
(N, 1, 192, 249, 16)). Exits 0 when everything holds, 1 otherwise.
"""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402

TOLERANCE = 1e-4
BAND = 1e-4
MAX_FLIP_FRACTION = 1e-4
THRESHOLD = 0.5
SHAPES = {"bcae++": ((8, 16, 12, 16), (1, 16, 192, 249)),
          "bcae-ht": ((8, 16, 12, 16), (1, 16, 192, 249)),
          "bcae": ((8, 12, 15, 16), (1, 192, 249, 16))}


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.stdout.strip():
        print("  " + r.stdout.strip()[-3000:].replace("\n", "\n  "))
    if r.returncode != 0:
        raise SystemExit(f"FAIL: {cmd[0]} {cmd[1]} exited with {r.returncode}")
    return time.perf_counter() - t0


def random_model(arch, seed):
    torch.manual_seed(seed)
    model = B.BCAE3D(arch)
    B.randomize_rezero(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


@torch.no_grad()
def reference(model, wedges):
    """float64 and float32 outputs: dict name -> numpy array (cropped)."""
    out = {}
    for dtype in (torch.float64, torch.float32):
        m = B.clone_model(model, dtype)
        res = {"code": [], "seg": [], "reg": [], "recon": []}
        for p in wedges:
            x = m.wedge_input(B.load_wedge(p), dtype)[None]
            code, seg, reg = m(x)
            seg, reg = B.crop(seg), B.crop(reg)
            res["code"].append(code)
            res["seg"].append(seg)
            res["reg"].append(reg)
            res["recon"].append(B.reconstruct(seg, reg))
        out[dtype] = {k: torch.cat(v).numpy() for k, v in res.items()}
    return out[torch.float64], out[torch.float32]


def report(c, ok):
    print(f"  {c['name']:6s} rel {c['rel']:.3e} (max |diff| {c['max_abs']:.3e}, max |ref| "
          f"{c['scale']:.4g}); worst element {c['worst_index']}: ref {c['worst_ref']:.7g} "
          f"got {c['worst_got']:.7g}  {'ok' if ok else 'FAIL'}")


def check_outputs(arch, ref, got):
    """The comparisons; returns the failure count."""
    failures = 0
    code_shape, out_shape = SHAPES[arch]
    n = ref["code"].shape[0]
    for k in ref:
        want = (n,) + (code_shape if k == "code" else out_shape)
        if got[k].shape != want or got[k].dtype != np.float32 or ref[k].shape != want:
            print(f"  FAIL: {k}.npy is {got[k].dtype}{got[k].shape}, reference "
                  f"{ref[k].shape}, expected float32{want}")
            failures += 1
    if failures:
        return failures
    for k in ("code", "seg", "reg"):
        c = B.compare(k, ref[k], got[k])
        ok = c["rel"] <= TOLERANCE
        failures += not ok
        report(c, ok)
    band = np.abs(ref["seg"].astype(np.float64) - THRESHOLD) < BAND
    flipped = (ref["recon"] > 0) != (got["recon"] > 0)
    outside = np.count_nonzero(flipped & ~band)
    n_flip = np.count_nonzero(flipped)
    band_ok = n_flip < MAX_FLIP_FRACTION * band.size and outside == 0
    failures += not band_ok
    print(f"  mask   {n_flip} flipped voxels of {band.size} ({outside} outside the band; "
          f"{np.count_nonzero(band)} within {BAND} of {THRESHOLD})  {'ok' if band_ok else 'FAIL'}")
    c = B.compare("recon", ref["recon"], np.where(flipped, ref["recon"], got["recon"]))
    ok = c["rel"] <= TOLERANCE
    failures += not ok
    report(c, ok)
    return failures


def load_outputs(d):
    return {k: np.load(os.path.join(d, f"{k}.npy")) for k in ("code", "seg", "reg", "recon")}


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    bcae, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    archs = sys.argv[3:] or ["bcae++", "bcae-ht"]
    torch.set_num_threads(2)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    run([bcae, "simulate", "--events", "1", "--seed", "5", "--out", data, "-q"])
    wedges = B.manifest(data, "train")
    wedges = [wedges[0], wedges[len(wedges) // 2 + 1]]
    failures = 0
    for i, arch in enumerate(archs):
        print(f"== {arch}")
        model = random_model(arch, 7 + i)
        path = os.path.join(work, f"{arch}.safetensors")
        B.save_model3d(path, model)
        t0 = time.perf_counter()
        ref, ref32 = reference(model, wedges)
        print(f"  reference: {time.perf_counter() - t0:.1f} s; torch float32 vs float64: " +
              ", ".join(f"{k} {B.compare(k, ref[k], ref32[k])['rel']:.1e}"
                        for k in ("code", "seg", "reg")))
        out = os.path.join(work, f"c_{arch}")
        dt = run([bcae, "forward", "--model", path, "--out", out, "--threads", "2"] + wedges)
        print(f"  bcae forward: {dt:.2f} s for {len(wedges)} wedges")
        failures += check_outputs(arch, ref, load_outputs(out))
    print("torch_parity_forward3d:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
