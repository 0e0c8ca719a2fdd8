"""The Python decoder written from docs/SPARSE.md (tests/sparse_decoder.py) against ours: the
same wedge, byte for byte, for streams of a simulated wedge (lossless and at E = 0.05), of a
synthetic wedge of any uint16 (values below 64 and above 1023, saturation, long and short
pulses; lossless and at E = 0.1), and of a stored one; and a damaged stream refused. Shows
that the document is enough to decode the format. NumPy only.

    /usr/bin/python3 tests/sparse_python_test.py BCAE SPARSE_TOOL WORKDIR
"""
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparse_decoder  # noqa: E402


def main():
    bcae, tool, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what, flush=True)
        if not cond:
            failures.append(what)

    # The sparsest wedge of one simulated event (the Python decoder takes seconds a wedge).
    data = os.path.join(work, "data")
    subprocess.run([bcae, "simulate", "--events", "1", "--seed", "11", "-o", data, "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    files = []
    for root, _, names in os.walk(os.path.join(data, "outer")):
        files += [os.path.join(root, n) for n in names if n.endswith(".npy")]
    sim = min((np.load(f) for f in sorted(files)), key=np.count_nonzero)

    rng = np.random.default_rng(3)
    syn = np.zeros((192, 249, 16), np.uint16)
    for _ in range(300):
        a, z, l = rng.integers(0, 192), rng.integers(0, 240), rng.integers(0, 16)
        n = int(rng.integers(1, 10))
        syn[a, z:z + n, l] = rng.integers(1, 65536, n)
    syn[5, 10:20, 3] = 1023
    syn[6, 100:101, 0] = 65535
    syn[7, 200:249, 15] = 64
    noise = rng.integers(0, 65536, (192, 249, 16)).astype(np.uint16)

    cases = [("simulated", sim, 0), ("simulated", sim, 0.05), ("synthetic", syn, 0),
             ("synthetic", syn, 0.1), ("noise", noise, 0)]
    for name, wedge, e in cases:
        src, stream, ours = (os.path.join(work, f"{name}_{e}{x}") for x in (".npy", ".bcsp", "_c.npy"))
        np.save(src, wedge)
        subprocess.run([tool, "encode", src, str(e), stream], check=True)
        subprocess.run([tool, "decode", stream, ours], check=True)
        with open(stream, "rb") as f:
            b = f.read()
        t0 = time.time()
        info, py = sparse_decoder.decode(b)
        c = np.load(ours)
        what = f"{name} wedge ({np.count_nonzero(wedge)} hits), E = {e}: {len(b)} bytes, {info['method']}"
        check(np.array_equal(py, c), f"{what}: Python decodes our bytes ({time.time() - t0:.1f} s)")
        check(np.array_equal(py != 0, wedge != 0), f"{what}: positions exact")
        if e == 0:
            check(np.array_equal(py, wedge), f"{what}: lossless")
        else:
            m = wedge != 0
            err = np.abs(np.log2(py[m] + 1.0) - np.log2(wedge[m] + 1.0)).max()
            check(err <= e, f"{what}: max error {err:.5f} <= {e}")
        if name == "noise":
            check(info["method"] == "stored", f"{what}: 16-bit noise is stored")
    # Damage: a flipped byte, a cut.
    with open(os.path.join(work, "synthetic_0.1.bcsp"), "rb") as f:
        b = bytearray(f.read())
    for what, bad in (("a flipped byte", b[:50] + bytes([b[50] ^ 4]) + b[51:]), ("a cut", b[:-1])):
        try:
            sparse_decoder.decode(bad)
            check(False, f"{what} is refused")
        except ValueError as e:
            check(True, f"{what} is refused ({e})")
    print("sparse_python_test: " + ("FAIL" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
