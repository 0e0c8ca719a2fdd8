"""The h5py example of docs/HDF5.md: simulated wedges stored through the BCAE
filter and read back. Run by ctest `hdf5_tour`.

Usage: python3 hdf5_tour.py [WORK_DIR]
"""
import os
import sys

import h5py
import numpy as np

import bcae

work = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(work, exist_ok=True)
path = os.path.join(work, "event0.h5")

bcae.register_hdf5_plugin()          # or start Python with HDF5_PLUGIN_PATH set
wedges = bcae.simulate(events=1, seed=1)
with h5py.File(path, "w") as f:
    f.create_dataset("wedges", data=wedges, chunks=(4, 192, 249, 16), **bcae.hdf5_filter())
with h5py.File(path, "r") as f:
    d = f["wedges"]
    back = d[:]
    print("stored", d.shape, d.dtype, "filter", d.id.get_create_plist().get_filter(0)[0],
          "ratio %.2f" % (wedges.nbytes / d.id.get_storage_size()))

# The same values as the Python codec (and so as `bcae decompress`).
model = bcae.Model()
assert np.array_equal(back, model.decode(model.encode(wedges)))
print("equal to model.decode(model.encode(wedges)):", True)
print("psnr_db of wedge 4: %.2f" % bcae.metrics(wedges[4], back[4])["psnr_db"])
