#!/usr/bin/python3
"""`bcae train` on 3D models against our PyTorch reference (ctest torch_parity_train3d).

    parity_train3d.py BCAE_BINARY WORK_DIR [--float64] [ARCH...]   (default: bcae-ht bcae++)

For each architecture: random initial weights (PyTorch's default initialisation, every
rezero_alpha random non-zero), 5 AdamW steps of batch 2 on the first 10 training wedges of a
simulated event in manifest order, with make_train_reference.py and with
`bcae train --arch A --init ... --no-shuffle`; then:
  - per-step lr, loss, loss_seg, loss_reg, coef within 1e-3 relative, same epoch and step;
  - final weights, per tensor max|c - ref| / max|ref| <= 5e-2. Looser than BCAE-2D's 1e-3
    on purpose: AdamW divides each gradient by its running RMS, so a weight whose gradient
    is mostly rounding noise moves by ~lr per step in a direction the noise picks. After 5
    steps torch's own float32 run is 1.3e-2 (BCAE++) and 1.4e-1 (BCAE, InstanceNorm) away
    from its float64 run on such tensors (measured 2026-11-24), while the losses agree to
    1e-5. A wrong gradient moves weights by O(1) of that scale.
With --float64 (by hand; ~1.5 min per model here) the reference runs in float64 and in
float32, and the weights must be no further from float64 than max(1e-3, 2 x torch
float32's largest distance from float64 over all tensors).
Exits 0 when everything holds, 1 otherwise.
"""

import csv
import os
import shutil
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402
import make_train_reference as T  # noqa: E402
import parity_forward3d as P  # noqa: E402
from parity_train import rel  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402

STEPS, BATCH = 5, 2
LEARNING_RATE = 1e-3
TOLERANCE = 1e-3


WEIGHT_TOLERANCE = 5e-2


def check_arch(bcae, work, data, arch, seed, float64):
    init = os.path.join(work, f"init_{arch}.safetensors")
    B.save_model3d(init, P.random_model(arch, seed))
    t0 = time.perf_counter()
    model, ref_rows = T.train_reference(init, data, STEPS, BATCH, LEARNING_RATE,
                                        dtype=torch.float64 if float64 else torch.float32)
    ref_weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    noise = {k: 0.0 for k in ref_weights}
    if float64:
        model32, _ = T.train_reference(init, data, STEPS, BATCH, LEARNING_RATE)
        noise = {k: B.compare(k, ref_weights[k], v.detach().numpy())["rel"]
                 for k, v in model32.state_dict().items()}
    print(f"  reference: {STEPS} steps of {BATCH}{', float64 and float32' if float64 else ''}: "
          f"{time.perf_counter() - t0:.1f} s")
    allowed = max(TOLERANCE, 2 * max(noise.values())) if float64 else WEIGHT_TOLERANCE
    out = os.path.join(work, f"c_{arch}.safetensors")
    log = os.path.join(work, f"c_{arch}.csv")
    dt = P.run([bcae, "train", "--data", data, "--arch", arch, "--init", init, "--out", out,
                "--log", log, "--no-shuffle", "--batch-size", str(BATCH),
                "--batches-per-epoch", str(STEPS), "--num-epochs", "1",
                "--validation-batches-per-epoch", "0", "--learning-rate", repr(LEARNING_RATE),
                "--threads", "2", "-q"])
    print(f"  bcae train: {dt:.1f} s")
    failures = 0
    with open(log, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if len(rows) != len(ref_rows):
        print(f"  FAIL: {len(rows)} log rows, expected {len(ref_rows)}")
        return 1
    print("  step  column     reference        bcae             rel")
    for ref, got in zip(ref_rows, rows):
        if int(got["epoch"]) != ref["epoch"] or int(got["step"]) != ref["step"]:
            print(f"  FAIL: row epoch {got['epoch']} step {got['step']}")
            failures += 1
        for col in T.COLUMNS[2:]:
            r = rel(ref[col], float(got[col]))
            ok = r <= TOLERANCE
            failures += not ok
            print(f"  {ref['step']:4d}  {col:9s} {ref[col]:15.9g}  {float(got[col]):15.9g}  "
                  f"{r:.2e}{'' if ok else '  FAIL'}")
    c_weights, meta, _ = read_safetensors(out)
    if meta.get("arch") != arch:
        print(f"  FAIL: the trained file's arch is {meta.get('arch')!r}")
        failures += 1
    results = []
    for k, v in ref_weights.items():
        if k not in c_weights:
            print(f"  FAIL: {out} lacks {k}")
            failures += 1
            continue
        results.append(B.compare(k, v, c_weights[k]))
    bad = [c for c in results if not c["rel"] <= allowed]
    failures += len(bad)
    print(f"  weights: {len(results)} tensors, {len(bad)} beyond {allowed:.2e}; the worst"
          f"{' (bcae / torch float32, both against float64)' if float64 else ''}:")
    for c in sorted(results, key=lambda c: -c["rel"])[:4]:
        print(f"    {c['name']:60s} rel {c['rel']:.2e}"
              f"{(' / ' + format(noise[c['name']], '.2e')) if float64 else ''}"
              f"{'' if c['rel'] <= allowed else '  FAIL'}")
    if float64:
        print(f"  largest: bcae {max(c['rel'] for c in results):.2e}, torch float32 "
              f"{max(noise.values()):.2e}")
    init_w, _, _ = read_safetensors(init)
    moved = max(float(np.max(np.abs(ref_weights[k] - init_w[k]))) for k in ref_weights)
    print(f"  (the reference's largest weight change over the {STEPS} steps: {moved:.2e})")
    return failures


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    bcae, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    float64 = "--float64" in sys.argv[3:]
    archs = [a for a in sys.argv[3:] if a != "--float64"] or ["bcae-ht", "bcae++"]
    torch.set_num_threads(2)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    P.run([bcae, "simulate", "--events", "1", "--seed", "5", "--out", data, "-q"])
    failures = 0
    for i, arch in enumerate(archs):
        print(f"== {arch}")
        failures += check_arch(bcae, work, data, arch, 31 + i, float64)
    print("torch_parity_train3d:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
