"""The sparse codec from Python (docs/PYTHON.md, "The sparse codec"): no model.

Usage: sparse_tour.py [WORKDIR]   (run by ctest as python_sparse_tour)
"""

import os
import sys

import numpy as np

import bcae

work = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(work, exist_ok=True)

wedges = bcae.simulate(events=1, seed=1)                   # (24, 192, 249, 16) uint16

# Wedges -> streams (one bytes per wedge) and back; every voxel within E.
streams, infos = bcae.sparse_encode(wedges, max_error=0.05, info=True)
back = bcae.sparse_decode(streams)
err = np.abs(np.log2(back + 1.0) - np.log2(wedges + 1.0)).max()
print(f"E 0.05: ratio {wedges.nbytes / sum(map(len, streams)):.2f}, "
      f"largest error {err:.4f}, zeros exact {np.array_equal(back == 0, wedges == 0)}")
i = infos[0]
print(f"wedge 0: {i['hits']} hits, occupancy {8 * i['occupancy_bytes'] / i['hits']:.2f} "
      f"bits/hit, values {8 * i['value_bytes'] / i['hits']:.2f} bits/hit")

# Lossless, and a target ratio instead of a bound.
lossless = bcae.sparse_encode(wedges)
assert np.array_equal(bcae.sparse_decode(lossless), wedges)
print(f"lossless: ratio {wedges.nbytes / sum(map(len, lossless)):.2f}")
_, r40 = bcae.sparse_encode(wedges, ratio=40, info=True)
print(f"ratio 40: bounds {min(d['max_error'] for d in r40):.4f} .. "
      f"{max(d['max_error'] for d in r40):.4f}")

# A container, as `bcae compress --codec sparse --max-error 0.05` writes it.
path = os.path.join(work, "event0-sparse.bcae")
stats = bcae.compress(path, wedges, codec="sparse", max_error=0.05)
with bcae.Container(path) as c:                            # no model needed
    assert c.model is None and c.codes() == streams
    restored = np.stack([record.wedge for record in c])
assert np.array_equal(restored, back)
print(f"container {stats['file_bytes']} bytes, {c.codec}, version {c.version}")
