#!/usr/bin/python3
"""Parity of the CPU backend's BCAE heads and loss with float64 PyTorch.

The reference (BNL-DAQ-LDRD/NeuralCompression_v2) trains with a focal loss in
log base 2 on the segmentation head and a masked L1 on the regression head,
the mask 1[sigmoid > threshold] carrying no gradient (SPEC sections 2 and 4).
This script restates those formulas in float64 torch, on the cropped tensors
(z < z_valid), takes their gradients with autograd, and compares them with
what `loss_tool parity` computes from the same .npy inputs: the heads, the
loss sums (focal, l1, sq and the counts) and the gradients of
L = L_reg + coef * L_seg, all to 1e-5 relative.

The padding columns z >= z_valid hold garbage (NaN or huge targets, large
logits and raw values) that must not reach the sums or the gradients, whose
values there must be exactly 0.

Usage: loss_reference.py PATH/TO/loss_tool WORK_DIR
Run it with an interpreter that has NumPy and PyTorch (/usr/bin/python3 with
Debian's python3-numpy and python3-torch); without them it fails rather than
skips, so a missing dependency cannot pass as a green test.
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError as exc:
    sys.stderr.write(
        "loss_reference.py: NumPy and PyTorch are required (apt-get install python3-numpy "
        "python3-torch, run with /usr/bin/python3): %s; failing, not skipping\n" % exc)
    sys.exit(1)

REL = 1e-5

# (name, n, h, w, z_valid, shift, scale, threshold, gamma, eps, coef)
CASES = [
    # The SPEC's training setting: log mode, gamma 2, coefficient at its start value.
    ("log2_default", 2, 24, 40, 35, 6.0, 3.0, 0.5, 2.0, 1e-8, 2000.0),
    # Raw-ADC transform (the original BCAE), another threshold, a non-integer
    # gamma (the pow() path) and a small coefficient.
    ("adc_gamma1.5", 1, 16, 32, 27, 64.0, 6.0, 0.3, 1.5, 1e-8, 0.75),
    # No padding at all.
    ("no_padding", 1, 8, 16, 16, 6.0, 3.0, 0.5, 2.0, 1e-8, 10.0),
]


def make_inputs(rng, n, h, w, z_valid, shift, scale):
    shape = (n, 16, h, w)
    logit = rng.normal(0.0, 2.0, shape)
    # Keep logits off 0, where a float32 and a float64 sigmoid may disagree
    # about the mask.
    logit = np.where(np.abs(logit) < 1e-3, np.copysign(1e-3, logit), logit)
    if shift < 10:  # log2(ADC + 1) targets: 0 or (6, 10]; v = 6 + 3 e^r
        raw = rng.uniform(-1.5, 1.0, shape)
        target = np.where(rng.random(shape) < 0.6, 0.0, 10.0 - 4.0 * rng.random(shape))
    else:  # raw ADC: 0 or [64, 1023]; v = 64 + 6 e^r
        raw = rng.uniform(1.0, 5.0, shape)
        target = np.where(rng.random(shape) < 0.6, 0.0, rng.integers(64, 1024, shape))
    # Every 50th voxel reconstructs its target exactly (mask on, raw 0:
    # v = shift + scale), the |.| kink, where torch's gradient is sign(0) = 0.
    tie = (np.arange(logit.size) % 50 == 3).reshape(shape)
    logit[tie], raw[tie], target[tie] = 1.0, 0.0, shift + scale
    pad = (slice(None), slice(None), slice(None), slice(z_valid, None))
    logit[pad] = rng.choice([-50.0, 50.0], logit[pad].shape)
    raw[pad] = rng.uniform(10.0, 20.0, raw[pad].shape)
    target[pad] = rng.choice([np.nan, 1e30, -7.0], target[pad].shape)
    return (logit.astype(np.float32), raw.astype(np.float32), target.astype(np.float32))


def reference(logit, raw, target, z_valid, shift, scale, threshold, gamma, eps, coef):
    """Float64 torch: heads, loss terms and autograd gradients (mask detached)."""
    x = torch.tensor(logit, dtype=torch.float64, requires_grad=True)
    r = torch.tensor(raw, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target, dtype=torch.float64)
    seg = torch.sigmoid(x)
    reg = shift + scale * torch.exp(r)
    mask = (seg > threshold).to(torch.float64).detach()
    recon = reg * mask

    crop = (slice(None), slice(None), slice(None), slice(0, z_valid))
    p, v, tc, mc = seg[crop], recon[crop], t[crop], mask[crop]
    label = (tc > 0).to(torch.float64)
    p_0 = 1 - p + eps
    p_1 = p + eps
    focal_terms = -(p_1 ** gamma * torch.log2(p_0) * (1 - label)
                    + p_0 ** gamma * torch.log2(p_1) * label)
    loss_seg = focal_terms.mean()
    loss_reg = torch.abs(v - tc).mean()
    total = loss_reg + coef * loss_seg
    total.backward()
    diff = (v - tc).detach()
    out = {
        "seg": seg.detach().numpy(), "reg": reg.detach().numpy(), "recon": recon.detach().numpy(),
        "dseg": x.grad.numpy(), "dreg": r.grad.numpy(),
        "voxels": float(p.numel()),
        "focal": float(focal_terms.sum()), "l1": float(diff.abs().sum()),
        "sq": float((diff ** 2).sum()),
        "pos": float(mc.sum()), "truth": float(label.sum()), "true_pos": float((mc * label).sum()),
        "loss_seg": float(loss_seg), "loss_reg": float(loss_reg),
    }
    return out


def close(got, want, rel=REL):
    """Element-wise |got - want| <= rel |want|, NaNs nowhere."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, "shape %s vs %s" % (got.shape, want.shape)
    bad = ~(np.abs(got - want) <= rel * np.abs(want))
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        return False, "%d elements off, first at %s: %r vs %r" % (
            int(bad.sum()), tuple(int(k) for k in i), got[i], want[i])
    return True, ""


def run_case(tool, work, rng, case):
    name, n, h, w, z_valid, shift, scale, threshold, gamma, eps, coef = case
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    logit, raw, target = make_inputs(rng, n, h, w, z_valid, shift, scale)
    np.save(os.path.join(d, "logit.npy"), logit)
    np.save(os.path.join(d, "raw.npy"), raw)
    np.save(os.path.join(d, "target.npy"), target)
    proc = subprocess.run(
        [tool, "parity", d, str(z_valid)] + [repr(v) for v in (shift, scale, threshold, gamma,
                                                               eps, coef)],
        capture_output=True, text=True)
    if proc.returncode != 0:
        return ["loss_tool exited %d: %s" % (proc.returncode, proc.stderr.strip())]
    sums = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = reference(logit, raw, target, z_valid, shift, scale, threshold, gamma, eps, coef)
    errors = []

    for key in ("voxels", "pos", "truth", "true_pos"):
        if sums[key] != ref[key]:
            errors.append("%s: %r vs torch %r" % (key, sums[key], ref[key]))
    for key in ("focal", "l1", "sq"):
        ok, why = close(sums[key], ref[key])
        if not ok:
            errors.append("sum %s: %s" % (key, why))
    # The means torch trains on, formed from our sums.
    ok, why = close(sums["focal"] / sums["voxels"], ref["loss_seg"])
    if not ok:
        errors.append("L_seg: " + why)
    ok, why = close(sums["l1"] / sums["voxels"], ref["loss_reg"])
    if not ok:
        errors.append("L_reg: " + why)

    for key in ("seg", "reg", "recon", "dseg", "dreg"):
        got = np.load(os.path.join(d, key + ".npy"))
        ok, why = close(got, ref[key])
        if not ok:
            errors.append("%s: %s" % (key, why))
        if key in ("dseg", "dreg") and z_valid < w and np.any(got[..., z_valid:] != 0):
            errors.append("%s: not exactly zero in the padding" % key)

    # The data must exercise both mask states and both labels.
    if not (0 < ref["true_pos"] < ref["pos"] and ref["true_pos"] < ref["truth"]):
        errors.append("test data degenerate: pos %g truth %g true_pos %g"
                      % (ref["pos"], ref["truth"], ref["true_pos"]))
    print("%-14s L_seg %.9g  L_reg %.9g  voxels %d  pos %d  truth %d: %s" % (
        name, ref["loss_seg"], ref["loss_reg"], ref["voxels"], ref["pos"], ref["truth"],
        "ok" if not errors else "FAILED"))
    return errors


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: loss_reference.py PATH/TO/loss_tool WORK_DIR\n")
        return 2
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20240611)
    failures = 0
    for case in CASES:
        for err in run_case(tool, work, rng, case):
            sys.stderr.write("%s: %s\n" % (case[0], err))
            failures += 1
    print("loss_torch_parity: %d cases, %d failures" % (len(CASES), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
