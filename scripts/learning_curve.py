#!/usr/bin/python3
"""Plots a `bcae train` run's learning curve for a model card.

    learning_curve.py --log losses.csv [--validation run.log ...] --seconds-per-step S
                      --out curve.png [--title TEXT]

--log is the run's per-step CSV (`bcae train --log`; a resumed run appends to it, so a step
that appears twice keeps its last row). --validation files are what `bcae train` printed on
stdout: lines "epoch E step S validation: ... loss_reg(mae) M precision P recall R". The top
axis gives hours at --seconds-per-step (a measured step time: the wall clock of a run
shared with other work says little). Needs matplotlib (Debian: python3-matplotlib).
"""

import argparse
import csv
import re
import sys

VALIDATION = re.compile(r"step (\d+) validation: .*loss_reg\(mae\) ([0-9.eE+-]+) "
                        r"precision ([0-9.eE+-]+|nan) recall ([0-9.eE+-]+|nan)")


def read_log(path):
    rows = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows[int(r["step"])] = r  # a resumed run's rows replace the earlier run's
    steps = sorted(rows)
    return steps, [float(rows[s]["loss_reg"]) for s in steps], \
        [float(rows[s]["loss_seg"]) for s in steps]


def read_validation(paths):
    points = {}
    for p in paths:
        with open(p) as fh:
            for line in fh:
                m = VALIDATION.search(line)
                if m:
                    points[int(m.group(1))] = tuple(float(x) for x in m.groups()[1:])
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--validation", nargs="*", default=[])
    ap.add_argument("--seconds-per-step", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--validation-wedges", type=int, default=64,
                    help="wedges a validation point averages (batches x batch size)")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    if not a.seconds_per_step > 0:
        ap.error("--seconds-per-step must be positive")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, reg, _ = read_log(a.log)
    if not steps:
        sys.exit(f"{a.log}: no rows")
    vsteps, vals = read_validation(a.validation)
    hours = lambda s: s * a.seconds_per_step / 3600  # noqa: E731
    steps_of = lambda h: h * 3600 / a.seconds_per_step  # noqa: E731

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(steps, smooth(reg, 100), color="0.6", lw=1,
             label="training loss_reg (batch MAE, mean of 100 steps)")
    if vsteps:
        ax1.plot(vsteps, [v[0] for v in vals], "o-", color="C0", ms=3,
                 label=f"validation loss_reg ({a.validation_wedges} held-out wedges)")
    ax1.set_xlabel("step (batch of 4 wedges)")
    ax1.set_ylabel("regression loss (log2(ADC+1) units)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    if vsteps:
        ax2.plot(vsteps, [v[1] for v in vals], "o-", ms=3, label="precision")
        ax2.plot(vsteps, [v[2] for v in vals], "s-", ms=3, label="recall")
        ax2.set_xlim(ax1.get_xlim())
    ax2.set_xlabel("step (batch of 4 wedges)")
    ax2.set_ylabel("validation precision / recall")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        top = ax.secondary_xaxis("top", functions=(hours, steps_of))
        top.set_xlabel(f"hours at {a.seconds_per_step:.2f} s a step")
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}: {len(steps)} steps, {len(vsteps)} validation points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
