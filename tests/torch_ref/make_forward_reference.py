#!/usr/bin/python3
"""Reference outputs of a random BCAE-2D on some wedges, for `bcae forward` to match.

    make_forward_reference.py MODEL_OUT.safetensors OUT_DIR WEDGE.npy... [--m M --n N --d D
                              --seed S --threads T]

Builds BCAE-2D(m, n, d) with PyTorch's default initialisation and every rezero_alpha set to
a random non-zero value (|alpha| ~ U(0.2, 1), random sign: the default 0 would hide every
residual branch), saves it as MODEL_OUT, and runs it on the wedges in float64, which is
written as the reference, and in float32, whose distance from float64 is printed: the noise
floor any float32 implementation can be expected to reach. Writes into OUT_DIR, all float32:
  code.npy   (N, 32, 192/2^d, 256/2^d)    the encoder's output, no fp16 rounding
  seg.npy    (N, 16, 192, 249)           sigmoid of the classifier head
  reg.npy    (N, 16, 192, 249)           6 + 3 exp(r) of the regression head
  recon.npy  (N, 16, 192, 249)           reg * (seg > 0.5)
(Callers that need to know which voxels sit on the threshold recompute |seg - 0.5| from
seg.npy: float32 of the float64 value, exact to ~3e-8.)
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcae_torch as B  # noqa: E402


def build_random_model(m, n, d, seed):
    """PyTorch's default initialisation, then random non-zero ReZero alphas; deterministic."""
    torch.manual_seed(seed)
    model = B.BCAE2D(m, n, d)
    gen = torch.Generator().manual_seed(seed + 1)
    B.randomize_rezero(model, gen)
    return model.eval()


@torch.no_grad()
def forward_outputs(model, inputs, batch=1):
    """inputs (N, 16, 192, 256) in the model's dtype -> dict of cropped numpy outputs."""
    out = {"code": [], "seg": [], "reg": [], "recon": []}
    for i in range(0, inputs.shape[0], batch):
        code, seg, reg = model(inputs[i:i + batch])
        seg, reg = B.crop(seg), B.crop(reg)
        out["code"].append(code)
        out["seg"].append(seg)
        out["reg"].append(reg)
        out["recon"].append(B.reconstruct(seg, reg))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def make_reference(model, wedge_paths, out_dir, verbose=True):
    """Runs float64 and float32, writes the float64 outputs (as float32) into out_dir.
    Returns (outputs64, outputs32, seconds64, seconds32)."""
    adc = [B.load_wedge(p) for p in wedge_paths]
    x64 = torch.stack([B.wedge_to_input(a, torch.float64) for a in adc])
    x32 = torch.stack([B.wedge_to_input(a, torch.float32) for a in adc])
    model32 = model.float()
    t0 = time.perf_counter()
    out32 = forward_outputs(model32, x32)
    t32 = time.perf_counter() - t0
    model64 = B.BCAE2D(model.m, model.n, model.d).double().eval()
    model64.load_state_dict({k: v.double() for k, v in model32.state_dict().items()})
    t0 = time.perf_counter()
    out64 = forward_outputs(model64, x64)
    t64 = time.perf_counter() - t0
    os.makedirs(out_dir, exist_ok=True)
    for k, v in out64.items():
        np.save(os.path.join(out_dir, f"{k}.npy"), v.astype(np.float32))
    if verbose:
        print(f"reference: {len(adc)} wedges, BCAE-2D({model.m}, {model.n}, {model.d}): "
              f"float32 {t32:.2f} s, float64 {t64:.2f} s "
              f"(torch threads {torch.get_num_threads()})")
        for k in ("code", "seg", "reg"):
            c = B.compare(k, out64[k], out32[k])
            print(f"  torch float32 vs float64 {k:6s} rel {c['rel']:.2e}  "
                  f"(max |diff| {c['max_abs']:.2e} of max |ref| {c['scale']:.3g})")
        flips = np.count_nonzero((out64["seg"] > 0.5) != (out32["seg"] > 0.5))
        print(f"  torch float32 vs float64 mask flips: {flips} of {out64['seg'].size}")
    return out64, out32, t64, t32


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_out")
    ap.add_argument("out_dir")
    ap.add_argument("wedges", nargs="+")
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = build_random_model(a.m, a.n, a.d, a.seed)
    B.save_model(a.model_out, model)
    make_reference(model, a.wedges, a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
