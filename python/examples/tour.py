"""The worked example of docs/PYTHON.md: simulate, compress, decompress,
metrics, and (with matplotlib) a picture. Run by ctest `python_tour`.

Usage: python3 tour.py [WORK_DIR]
"""
import os
import sys

import numpy as np

import bcae

work = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(work, exist_ok=True)

# 1. Simulate one central Au+Au event with pile-up: 24 wedges of raw ADC.
wedges = bcae.simulate(events=1, seed=1)
print("wedges", wedges.shape, wedges.dtype, "occupancy %.3f" % (wedges > 0).mean())

# 2. Compress them with the shipped default model into a .bcae container.
model = bcae.Model()
names = [f"event0/wedge{i:02d}.npy" for i in range(len(wedges))]
stats = bcae.compress(os.path.join(work, "event0.bcae"), wedges, names, model=model)
print("model", model.arch, model.code_shape, "fingerprint", model.fingerprint[:16] + "...")
print("container %d bytes, ratio %.2f" % (stats["file_bytes"], wedges.nbytes / stats["file_bytes"]))

# 3. Decompress: records in file order, each with its name, code and wedge.
with bcae.Container(os.path.join(work, "event0.bcae")) as container:
    restored = np.stack([record.wedge for record in container])
    fifth = container[4]
print("restored", restored.shape, restored.dtype, "record 4 is", fifth.name)

# 4. Metrics, as `bcae metrics --json` reports them, averaged over the wedges.
per_wedge = bcae.metrics(wedges, restored)
for key in ("mse", "mae", "psnr_db", "precision", "recall"):
    print("%-9s %.4f" % (key, np.mean([m[key] for m in per_wedge])))

# 5. A picture of wedge 4, layer 8: original and reconstruction in log2(ADC+1).
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no picture")
else:
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, w, title in ((axes[0], wedges[4], "original"), (axes[1], restored[4], "BCAE-2D")):
        im = ax.imshow(np.log2(w[:, :, 8] + 1.0), origin="lower", aspect="auto", vmin=6, vmax=10,
                       cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("z (time bin)")
    axes[0].set_ylabel("azimuth (pad)")
    fig.colorbar(im, ax=axes, label="log2(ADC+1)")
    fig.savefig(os.path.join(work, "wedge4_layer8.png"), dpi=80)
    print("picture", os.path.join(work, "wedge4_layer8.png"))
