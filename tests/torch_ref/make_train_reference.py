#!/usr/bin/python3
"""Reference training run of BCAE-2D, for `bcae train` to match step by step.

    make_train_reference.py INIT.safetensors OUT_DIR --data DIR --steps K --batch-size B
                            --learning-rate LR [--batches-per-epoch E --warmup W
                            --lr-step S --gamma G --threads T --float64]

From the weights in INIT, runs K AdamW steps on the first K*B wedges of DIR's train manifest
in manifest order (no shuffling; DIR holds train.txt or has outer/train.txt), with the losses,
dynamic coefficient, optimiser and schedule of SPEC section 4 (bcae_torch.py). Writes
  OUT_DIR/losses.csv           epoch,step,lr,loss,loss_seg,loss_reg,coef, one row per step
                               (epoch 0-based, step the 1-based global step, as `bcae train
                               --log` writes them; the losses are those of the batch before
                               its update, coef the coefficient that batch used)
  OUT_DIR/weights.safetensors  the final weights, with INIT's metadata
"""

import argparse
import csv
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcae_torch as B  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402

COLUMNS = ["epoch", "step", "lr", "loss", "loss_seg", "loss_reg", "coef"]


def train_reference(init_path, data_dir, steps, batch_size, learning_rate, batches_per_epoch=None,
                    warmup=50, lr_step=10, gamma=0.95, dtype=torch.float32, grads=None):
    """Returns (model, rows): the trained model and one dict per step. With `grads` (a dict),
    each parameter's gradient of every step is appended there under its name."""
    model = B.load_any_model(init_path).to(dtype)
    model.train()
    paths = B.manifest(data_dir, "train")
    if len(paths) < steps * batch_size:
        raise SystemExit(f"{data_dir}: {len(paths)} training wedges, {steps} steps of "
                         f"{batch_size} need {steps * batch_size}")
    bpe = batches_per_epoch or steps
    epochs = math.ceil(steps / bpe)
    opt = B.make_optimizer(model, learning_rate)
    sched = B.make_scheduler(opt, epochs, warmup, lr_step, gamma)
    coef = B.DynamicCoefficient()
    rows = []
    for k in range(steps):
        epoch = k // bpe
        batch = paths[k * batch_size:(k + 1) * batch_size]
        x = torch.stack([B.model_input(model, B.load_wedge(p), dtype) for p in batch])
        lr = opt.param_groups[0]["lr"]
        _, seg, reg = model(x)
        l_seg, l_reg = B.bcae_losses(seg, reg, x)
        # The coefficient follows this batch's losses before the total is formed.
        c = coef.update(l_reg.item(), l_seg.item())
        loss = l_reg + c * l_seg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grads is not None:
            for name, p in model.named_parameters():
                grads.setdefault(name, []).append(p.grad.detach().double().numpy().copy())
        opt.step()
        rows.append({"epoch": epoch, "step": k + 1, "lr": lr, "loss": loss.item(),
                     "loss_seg": l_seg.item(), "loss_reg": l_reg.item(), "coef": c})
        if (k + 1) % bpe == 0:
            sched.step()  # once per epoch
    return model, rows


def write_losses(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r["epoch"], r["step"]] + [f"{r[c]:.9g}" for c in COLUMNS[2:]])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("init")
    ap.add_argument("out_dir")
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--batches-per-epoch", type=int, default=None,
                    help="steps per epoch for the schedule (default: all K)")
    ap.add_argument("--warmup", type=int, default=50, help="epochs at the initial rate")
    ap.add_argument("--lr-step", type=int, default=10, help="epochs between rate decays")
    ap.add_argument("--gamma", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--float64", action="store_true",
                    help="train in float64 (to measure float32's own noise)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model, rows = train_reference(a.init, a.data, a.steps, a.batch_size, a.learning_rate,
                                  a.batches_per_epoch, a.warmup, a.lr_step, a.gamma,
                                  torch.float64 if a.float64 else torch.float32)
    dt = time.perf_counter() - t0
    os.makedirs(a.out_dir, exist_ok=True)
    write_losses(os.path.join(a.out_dir, "losses.csv"), rows)
    _, meta, _ = read_safetensors(a.init)
    B.save_model(os.path.join(a.out_dir, "weights.safetensors"), model, meta)
    print(f"reference training: {a.steps} steps of {a.batch_size} wedges, "
          f"BCAE-2D({model.m}, {model.n}, {model.d}): {dt:.2f} s (torch threads "
          f"{torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
