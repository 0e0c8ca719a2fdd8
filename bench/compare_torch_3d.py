#!/usr/bin/python3
"""Throughput of the 3D models (BCAE++, BCAE-HT, BCAE) in bcae and in PyTorch, one session.

    /usr/bin/python3 bench/compare_torch_3d.py BCAE_BINARY [--arch bcae++] [--batch 4]
        [--threads 2] [--train] [--seconds 3] [--deconv auto|direct|shuffle] [--json]

Runs `bcae bench --arch A --json`, then the same architecture in PyTorch
(tests/torch_ref/bcae_torch.py BCAE3D, random weights) on the same synthetic wedges
(compare_torch.py's synth_wedge), and prints both with the ratio ours / torch (> 1: bcae
faster). Timed as compare_torch.py times BCAE-2D: encoder (no_grad), both decoder heads'
raw outputs (no_grad), and with --train a training step (forward, BCAE loss with the
per-batch coefficient, backward, AdamW). PyTorch runs its ConvTranspose3d as it is; bcae
as --deconv says. Same thread count and wait policy on both
sides. Uses numpy and torch only: run with /usr/bin/python3.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_ref"))
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

from compare_torch import synth_wedge, time_pass  # noqa: E402


def run_bcae(a):
    cmd = [a.bcae, "bench", "--arch", a.arch, "--batch", str(a.batch), "--threads",
           str(a.threads), "--seconds", repr(a.seconds), "--deconv", a.deconv, "--json"]
    if a.train:
        cmd.append("--train")
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = p.stdout.strip().splitlines()
    for line in lines[:-1]:
        print("  " + line)
    if p.returncode != 0 or not lines:
        sys.exit(f"compare_torch_3d: bcae bench failed with status {p.returncode}")
    return json.loads(lines[-1])


def measure_torch(a, torch, B):
    torch.manual_seed(1)
    model = B.BCAE3D(a.arch).float()
    x = torch.stack([model.wedge_input(synth_wedge(i)) for i in range(a.batch)])
    out = {}
    with torch.no_grad():
        med, _, _ = time_pass(lambda: model.encoder(x), a.seconds)
        out["encode"] = med
        code = model.encoder(x)
        dec = model.decoder
        heads = [getattr(dec, dec.clf_name), getattr(dec, dec.reg_name)]
        med, _, _ = time_pass(lambda: [h(code) for h in heads], a.seconds)
        out["decode"] = med
    if a.train:
        opt = B.make_optimizer(model)
        coef = B.DynamicCoefficient()

        def step():
            _, seg, reg = model(x)
            l_seg, l_reg = B.bcae_losses(seg, reg, x)
            c = coef.update(l_reg.item(), l_seg.item())
            loss = l_reg + c * l_seg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        med, _, _ = time_pass(step, a.seconds)
        out["train"] = med
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bcae", metavar="BCAE_BINARY")
    ap.add_argument("--arch", default="bcae++", choices=("bcae++", "bcae-ht", "bcae"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--deconv", default="auto", choices=("auto", "direct", "shuffle"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    ours = run_bcae(a)
    import torch
    import bcae_torch as B
    torch.set_num_threads(a.threads)
    theirs = measure_torch(a, torch, B)
    fe, fd = ours["encoder_flops_per_wedge"], ours["decoder_flops_per_wedge"]
    rows = [("encode", a.batch / ours["encoder_wedges_per_s"], theirs["encode"], fe),
            ("decode", a.batch / ours["decoder_wedges_per_s"], theirs["decode"], fd)]
    if a.train:
        rows.append(("train step", ours["train_step_s"], theirs["train"], 3 * (fe + fd)))
    print(f"\n{a.arch}, batch {a.batch}, {a.threads} threads, fp32, bcae transposed convs "
          f"{a.deconv}; torch {torch.__version__}")
    print(f"{'pass':11s} {'bcae ms':>10s} {'torch ms':>10s} {'bcae w/s':>9s} {'torch w/s':>9s} "
          f"{'bcae GF/s':>9s} {'torch GF/s':>10s} {'ratio':>6s}")
    result = {"arch": a.arch, "batch": a.batch, "threads": a.threads, "deconv": a.deconv}
    for name, ob, tb, flops in rows:
        print(f"{name:11s} {1e3 * ob:10.1f} {1e3 * tb:10.1f} {a.batch / ob:9.2f} "
              f"{a.batch / tb:9.2f} {flops * a.batch / ob * 1e-9:9.1f} "
              f"{flops * a.batch / tb * 1e-9:10.1f} {tb / ob:6.2f}")
        result[name.replace(" ", "_")] = {"bcae_s": ob, "torch_s": tb, "ratio": tb / ob}
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
