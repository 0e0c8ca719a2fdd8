"""Plots the fp32 and bf16 training logs of bench/bf16_loss_curve.sh and
prints how far apart they are.

    bf16_loss_curve.py FP32.csv BF16.csv OUT.png

The logs are `bcae train --log` CSVs (epoch,step,lr,loss,loss_seg,loss_reg,
coef). Per-step losses are noisy (each step sees another batch), so the
comparison also uses a running mean over 25 steps.
"""
import csv
import sys

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WINDOW = 25


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def running_mean(x, w=WINDOW):
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        lo = max(0, i + 1 - w)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def main():
    fp32, bf16, out = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
    n = min(len(fp32["step"]), len(bf16["step"]))
    step = fp32["step"][:n]
    fig, ax = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for log, name, style in ((fp32, "fp32", "-"), (bf16, "bf16 mixed", "--")):
        ax[0].plot(step, log["loss"][:n], style, lw=0.8, label=f"{name}: loss")
        ax[1].plot(step, running_mean(log["loss_reg"][:n]), style, lw=1.2,
                   label=f"{name}: L_reg (MAE), mean of {WINDOW}")
        ax[1].plot(step, running_mean(log["loss_seg"][:n]), style, lw=1.2,
                   label=f"{name}: L_seg (focal), mean of {WINDOW}")
    ax[0].set_yscale("log")
    ax[0].set_ylabel("loss = L_reg + c L_seg")
    ax[0].legend()
    ax[1].set_yscale("log")
    ax[1].set_ylabel(f"running mean of {WINDOW} steps")
    ax[1].legend(fontsize=8)
    rel = (bf16["loss"][:n] - fp32["loss"][:n]) / fp32["loss"][:n]
    rel_s = running_mean(bf16["loss"][:n]) / running_mean(fp32["loss"][:n]) - 1
    ax[2].plot(step, 100 * rel, lw=0.6, color="0.6", label="per step")
    ax[2].plot(step, 100 * rel_s, lw=1.4, color="C3", label=f"running mean of {WINDOW}")
    ax[2].axhline(0, color="k", lw=0.5)
    ax[2].set_ylabel("bf16 vs fp32 loss (%)")
    ax[2].set_xlabel("step")
    ax[2].legend()
    fig.suptitle("BCAE-2D(2,2,2), batch 2, AdamW 2e-3, same data, seed and batches")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    last = slice(max(0, n - 100), n)
    print(f"steps {n}; both finite: {bool(np.isfinite(fp32['loss'][:n]).all() and np.isfinite(bf16['loss'][:n]).all())}")
    for k in (10, 50, 100, 200, n):
        if k <= n:
            print(f"step {k}: loss fp32 {fp32['loss'][k-1]:.5g} bf16 {bf16['loss'][k-1]:.5g} "
                  f"rel {rel[k-1]:+.2e}")
    print(f"per-step |rel diff|: median {np.median(np.abs(rel)):.2e}, max {np.abs(rel).max():.2e}")
    print(f"last 100 steps mean loss: fp32 {fp32['loss'][last].mean():.5g}, "
          f"bf16 {bf16['loss'][last].mean():.5g} "
          f"({bf16['loss'][last].mean() / fp32['loss'][last].mean() - 1:+.2%})")
    for k in ("loss_reg", "loss_seg"):
        print(f"last 100 steps mean {k}: fp32 {fp32[k][last].mean():.5g}, "
              f"bf16 {bf16[k][last].mean():.5g} "
              f"({bf16[k][last].mean() / fp32[k][last].mean() - 1:+.2%})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
