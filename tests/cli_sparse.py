"""The sparse codec through the CLI, end to end: `bcae compress --codec sparse` at a bound, at a
ratio and lossless; `decompress` (no model) with every voxel checked against its bound and the
positions exact; the container read by the independent Python reader (tests/bcae_reader.py with
tests/sparse_decoder.py) giving the same wedges; `inspect` (text and JSON) and `eval --codec
sparse`; appending; a wedge of any uint16 (values above 1023 and below 64); usage errors; and
a damaged stream inside a valid record, refused after the intact records before it are written.

    /usr/bin/python3 tests/cli_sparse.py BCAE WORKDIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcae_reader  # noqa: E402

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def describe(p):
    return f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}"


def wedges_under(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            if n.endswith(".npy"):
                f = os.path.join(root, n)
                out[os.path.relpath(f, folder)] = np.load(f)
    return out


def crc32c(data):
    return bcae_reader.crc32c(data)


def main():
    bcae, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    p = run(bcae, "simulate", "--events", "1", "--seed", "13", "--test-fraction", "1", "-o", data, "-q")
    check(p.returncode == 0, f"simulate: {describe(p)}")
    originals = wedges_under(os.path.join(data, "outer"))
    names = sorted(originals)[:6]
    inputs = [os.path.join(data, "outer", n) for n in names]

    # Compress at a bound, lossless and at a ratio; decompress; check every voxel.
    for label, opts, bound in (("E=0.05", ["--max-error", "0.05"], 0.05), ("lossless", [], 0.0),
                               ("ratio 40", ["--ratio", "40"], None)):
        f = os.path.join(work, f"{label.replace(' ', '_')}.bcae")
        p = run(bcae, "compress", "--codec", "sparse", *opts, "-o", f, "-q", "--threads", "2", *inputs)
        check(p.returncode == 0 and "codec           sparse" in p.stdout, f"compress {label}: {describe(p)}")
        out = os.path.join(work, f"out_{label.replace(' ', '_')}")
        p = run(bcae, "decompress", "-o", out, "-q", f)
        check(p.returncode == 0, f"decompress {label} (no model): {describe(p)}")
        got = wedges_under(out)
        check(len(got) == len(inputs), f"{label}: {len(got)} wedges written")
        j = json.loads(run(bcae, "inspect", "--json", f).stdout or "{}")
        recs = {r["path"]: r for r in j.get("records", [])}
        worst, checked, exact_pos = 0.0, 0, True
        for rel, w in got.items():
            a = originals[rel.split("outer/")[-1]]  # stored under the path given, less its '/'

            exact_pos &= bool(np.array_equal(a != 0, w != 0))
            m = a != 0
            e = np.abs(np.log2(w[m] + 1.0) - np.log2(a[m] + 1.0))
            worst = max(worst, float(e.max()) if e.size else 0.0)
            checked += int(m.sum())
            if bound is None:  # ratio mode: each record's own bound
                b = recs[rel]["max_error"]
                check(float(e.max()) <= b, f"{label}: {rel} within its bound {b:.4f}")
        check(exact_pos, f"{label}: zeros and hits exact")
        if bound is not None:
            check(worst <= bound, f"{label}: every one of {checked} non-zero voxels within {bound} "
                                  f"(worst {worst:.5f})")
        if label == "lossless":
            check(all(np.array_equal(originals[r.split("outer/")[-1]], w) for r, w in got.items()),
                  "lossless: exact")
        if label == "ratio 40":
            ratios = [np.prod(r["orig_shape"]) * 2 / r["bytes"] for r in j["records"]]
            check(min(ratios) >= 40, f"ratio 40: every stream meets it ({min(ratios):.2f})")
        # The independent reader, written from the format documents, decodes the same wedges.
        if label == "E=0.05":
            hdr, precs = bcae_reader.read(f)
            check(hdr["version"] == 2 and hdr["sparse"], "Python reader: a version-2 sparse file")
            same = all(np.array_equal(r["wedge"], got[r["path"]]) for r in precs)
            check(same and len(precs) == len(got), "Python reader decodes the same wedges")
            check(j["version"] == 2 and j["arch"] == "sparse" and j["code_dtype"] == "sparse"
                  and all(abs(r["max_error"] - 0.05) < 1e-6 for r in j["records"]),
                  "inspect --json: version 2, sparse, E per record")
            t = run(bcae, "inspect", f)
            check(t.returncode == 0 and "no model" in t.stdout and "occ b/h" in t.stdout,
                  f"inspect text: {describe(t)}")

    # eval --codec sparse: keys and values.
    p = run(bcae, "eval", "--codec", "sparse", "--max-error", "0.02", "--data", data, "--limit", "3", "--json")
    try:
        e = json.loads(p.stdout)
    except ValueError:
        e = {}
    check(p.returncode == 0 and e.get("precision") == 1 and e.get("recall") == 1
          and e.get("ratio", 0) > 10 and e.get("max_error_max", 1) <= 0.02
          and e.get("encoder_wedges_per_s", 0) > 0 and e.get("decoder_wedges_per_s", 0) > 0,
          f"eval --codec sparse --json: {describe(p)}")

    # plot --sparse: original, reconstruction and difference as a PNG.
    png = os.path.join(work, "sparse.png")
    p = run(bcae, "plot", inputs[0], "--sparse", "0.05", "-o", png)
    ok = p.returncode == 0 and os.path.exists(png) and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    check(ok, f"plot --sparse writes a PNG: {describe(p)}")
    # bench --codec sparse: the JSON keys, positive rates (never a speed threshold).
    p = run(bcae, "bench", "--codec", "sparse", "--data", data, "--limit", "2", "--seconds", "0", "--json")
    try:
        b = json.loads(p.stdout)
    except ValueError:
        b = {}
    check(p.returncode == 0 and b.get("encoder_wedges_per_s", 0) > 0 and b.get("decoder_wedges_per_s", 0) > 0
          and b.get("ratio", 0) > 1 and b.get("wedges") == 2, f"bench --codec sparse --json: {describe(p)}")

    # Append to a sparse file; a BCAE file is not one to append streams to.
    f = os.path.join(work, "append.bcae")
    run(bcae, "compress", "--codec", "sparse", "-o", f, "-q", inputs[0])
    p = run(bcae, "compress", "--codec", "sparse", "--append", "-o", f, "-q", inputs[1])
    check(p.returncode == 0, f"append to a sparse file: {describe(p)}")
    hdr, precs = bcae_reader.read(f)
    check(len(precs) == 2, "the appended file has 2 records")

    # Any uint16: values above 1023 and below 64.
    rng = np.random.default_rng(5)
    odd = np.zeros((192, 249, 16), np.uint16)
    odd[rng.integers(0, 192, 500), rng.integers(0, 249, 500), rng.integers(0, 16, 500)] = \
        rng.integers(1, 65536, 500)
    src = os.path.join(work, "odd.npy")
    np.save(src, odd)
    f = os.path.join(work, "odd.bcae")
    p = run(bcae, "compress", "--codec", "sparse", "--max-error", "0.1", "-o", f, "-q", src)
    check(p.returncode == 0, f"compress any uint16: {describe(p)}")
    out = os.path.join(work, "out_odd")
    run(bcae, "decompress", "-o", out, "-q", f)
    w = next(iter(wedges_under(out).values()), None)  # the one wedge written
    m = odd != 0
    ok = w is not None and np.array_equal(w != 0, m) and \
        float(np.abs(np.log2(w[m] + 1.0) - np.log2(odd[m] + 1.0)).max()) <= 0.1
    check(ok, "any uint16 wedge decodes within its bound")

    # Usage errors.
    for args, what in ((["--max-error", "0.1"], "--max-error without --codec sparse"),
                       (["--codec", "sparse", "--max-error", "0.1", "--ratio", "9"], "both bound and ratio"),
                       (["--codec", "sparse", "--max-error", "9"], "a bound above 8"),
                       (["--codec", "sparse", "--model", "x.safetensors"], "a model with sparse"),
                       (["--codec", "zfp"], "an unknown codec")):
        p = run(bcae, "compress", *args, "-o", os.path.join(work, "u.bcae"), inputs[0])
        check(p.returncode == 2, f"compress refuses {what}: {describe(p)}")

    # A damaged stream inside a valid record: the records before it are written, then an error.
    src = os.path.join(work, "E=0.05.bcae")
    b = bytearray(open(src, "rb").read())
    _, precs = bcae_reader.read(src)
    h = 64 + b[42] + 4
    offs, o = [], h
    for _ in precs:
        plen, stored = struct.unpack_from("<H", b, o + 4)[0], struct.unpack_from("<I", b, o + 32)[0]
        offs.append((o, plen, stored))
        o += 44 + plen + stored
    o, plen, stored = offs[2]
    b[o + 40 + plen + 100] ^= 0x10  # inside record 2's stream (its own CRC catches it)
    body = 40 + plen + stored
    b[o + body:o + body + 4] = struct.pack("<I", crc32c(bytes(b[o:o + body])))
    bad = os.path.join(work, "bad.bcae")
    open(bad, "wb").write(bytes(b))
    out = os.path.join(work, "out_bad")
    p = run(bcae, "decompress", "-o", out, "-q", bad)
    check(p.returncode == 1 and "record 2" in p.stderr and "CRC" in p.stderr,
          f"a damaged stream is refused, naming record 2: {describe(p)}")
    check(len(wedges_under(out)) == 2, "the 2 intact records before it are written")
    p = run(bcae, "inspect", bad)
    check(p.returncode == 1 and "record 2" in p.stderr, f"inspect names it too: {describe(p)}")
    try:
        bcae_reader.read(bad)
        check(False, "the Python reader refuses it")
    except ValueError as e:
        check("record 2" in str(e), f"the Python reader refuses it ({e})")

    print("cli_sparse: " + ("FAIL" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
