#!/usr/bin/python3
"""The C safetensors reader/writer against the Python one (ctest safetensors_python_interop).

    safetensors_interop.py TEST_SAFETENSORS_BINARY WORK_DIR

The reference scripts write model files with safetensors_np.py and read the C trainer's
files with it, so the two must agree both ways:
  1. Python writes files with every dtype (BF16 included), a scalar, empty tensors, names
     and metadata that need escaping (once with \\uXXXX escapes, once as raw UTF-8), and a
     BCAE-2D model file; `test_safetensors dump` must report the same names in the same
     order, dtypes, shapes, the SHA-256 of every tensor's bytes, the metadata, and as
     fingerprint the SHA-256 of the data buffer.
  2. `test_safetensors copy` rewrites each file with the C writer; Python must read back the
     same arrays bit for bit and the same metadata, the layout must be the reference's
     (header padded with spaces to a multiple of 8, offsets contiguous in the given order),
     and the fingerprint must not change.
  3. Files the C reader must refuse (duplicate names, which json.loads would silently
     merge, overlapping offsets) are refused by both.
Needs only numpy.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import (SafetensorsError, data_section, encode_safetensors,  # noqa: E402
                            read_safetensors, write_safetensors)

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"  FAIL: {what}")
    return cond


def sample_tensors(rng):
    t = []
    for dt in ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4",
               "<f8"]:
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        if dt == "|b1":
            a = rng.integers(0, 2, size=shape).astype(bool)
        elif dt[1] in "ui":
            info = np.iinfo(np.dtype(dt))
            a = rng.integers(info.min, info.max, size=shape, dtype=np.dtype(dt), endpoint=True)
        else:
            a = rng.standard_normal(shape).astype(dt)
        t.append((f"t.{np.dtype(dt).name}", a))
    t.append(("t.bf16", rng.integers(0, 65536, size=(3, 2)).astype("<u2"), "BF16"))
    t.append(("scalar", np.array(2.5, dtype="<f4")))
    t.append(("empty", np.zeros((3, 0), dtype="<f8")))
    t.append(("caf\u00e9 \U0001F600 \"q\" \\ tab\t nl\n", np.arange(3, dtype="<i4")))
    t.append(("\u03bb/\u2603", np.ones((2, 2), dtype="<f2")))
    return t


META = {"arch": "bcae-2d", "note": "line\none \"q\" \\ \u00e9 \U0001F600 \x01", "": "empty key"}


def c_dump(tool, path):
    r = subprocess.run([tool, "dump", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace").strip()
    return json.loads(r.stdout.decode("utf-8")), None


def check_dump(tool, path):
    """The C reader's view of a Python-written file equals the Python reader's."""
    dump, err = c_dump(tool, path)
    if not check(dump is not None, f"{path}: C reader refused it: {err}"):
        return
    tensors, meta, dtypes = read_safetensors(path)
    check([t["name"] for t in dump["tensors"]] == list(tensors), f"{path}: names/order differ")
    for t in dump["tensors"]:
        a = tensors.get(t["name"])
        if a is None:
            continue
        check(t["dtype"] == dtypes[t["name"]], f"{t['name']!r}: dtype {t['dtype']}")
        check(t["shape"] == list(a.shape), f"{t['name']!r}: shape {t['shape']}")
        digest = hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()
        check(t["sha256"] == digest, f"{t['name']!r}: data differ")
    check(dump["metadata"] == meta, f"{path}: metadata {dump['metadata']!r} != {meta!r}")
    with open(path, "rb") as fh:
        want = hashlib.sha256(data_section(fh.read())).hexdigest()
    check(dump["fingerprint"] == want, f"{path}: fingerprint is not the data's SHA-256")
    return dump["fingerprint"]


def check_copy(tool, src, dst):
    """The C writer's copy reads back identically, laid out as the reference lays it out."""
    r = subprocess.run([tool, "copy", src, dst], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not check(r.returncode == 0, f"C copy failed: {r.stderr.decode(errors='replace')}"):
        return
    a, ma, da = read_safetensors(src)
    b, mb, db = read_safetensors(dst)
    # Our writer adds (or renews) its checksum, the SHA-256 of the data
    # section, as the last metadata entry (docs/FORMATS.md); the rest is kept.
    with open(dst, "rb") as fh:
        want_sum = hashlib.sha256(data_section(fh.read())).hexdigest()
    check(mb.get("bcae.sha256") == want_sum and list(mb)[-1] == "bcae.sha256",
          f"{dst}: bcae.sha256 {mb.get('bcae.sha256')!r} is not the data's SHA-256 {want_sum}")
    ma = {k: v for k, v in ma.items() if k != "bcae.sha256"}
    mb = {k: v for k, v in mb.items() if k != "bcae.sha256"}
    check(list(a) == list(b) and ma == mb and da == db, f"{dst}: names/metadata/dtypes differ")
    for k in a:
        if k in b:
            check(a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(),
                  f"{dst}: {k!r} differs")
    with open(dst, "rb") as fh:
        blob = fh.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = blob[8:8 + hlen]
    check(hlen % 8 == 0, f"{dst}: header length {hlen} is not a multiple of 8")
    check(header.rstrip(b" ").endswith(b"}") and b"\x00" not in header,
          f"{dst}: header is not JSON padded with spaces")
    offsets = [v["data_offsets"] for k, v in json.loads(header).items() if k != "__metadata__"]
    at = 0
    for begin, end in offsets:  # in the order the tensors were given
        check(begin == at, f"{dst}: offsets not contiguous in order ({begin} != {at})")
        at = end
    check(hashlib.sha256(data_section(blob)).hexdigest() ==
          hashlib.sha256(data_section(open(src, "rb").read())).hexdigest(),
          f"{dst}: the fingerprint changed in the copy")


def check_refusals(tool, work):
    cases = {
        "duplicate names": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                           b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        "overlap": b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                   b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        "non-string metadata": b'{"__metadata__":{"m":4}}',
    }
    for what, header in cases.items():
        header += b" " * (-len(header) % 8)
        blob = struct.pack("<Q", len(header)) + header + bytes(8 if b'"a"' in header else 0)
        path = os.path.join(work, "refuse.safetensors")
        with open(path, "wb") as fh:
            fh.write(blob)
        dump, err = c_dump(tool, path)
        check(dump is None and err and "refuse.safetensors" in err,
              f"{what}: the C reader accepted it ({err})")
        try:
            read_safetensors(path)
            check(False, f"{what}: the Python reader accepted it")
        except SafetensorsError:
            pass
        print(f"  refused ({what}): {err}")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rng = np.random.default_rng(5)
    tensors = sample_tensors(rng)
    for ascii_only in (True, False):
        path = os.path.join(work, f"py_{'ascii' if ascii_only else 'utf8'}.safetensors")
        write_safetensors(path, tensors, META, ensure_ascii=ascii_only)
        fp = check_dump(tool, path)
        copy = path.replace("py_", "c_")
        check_copy(tool, path, copy)
        check(check_dump(tool, copy) == fp, f"{copy}: fingerprint differs from {path}")
        print(f"  {os.path.basename(path)}: {len(tensors)} tensors, fingerprint {fp}")

    # A model-sized file: BCAE-2D(4, 8, 3) tensor names and shapes, random values.
    model = [(f"encoder.layers.{j}.conv1.0.weight", rng.standard_normal((32, 32, 3, 3))
              .astype("<f4")) for j in (1, 2, 4, 5, 7, 8, 10, 11)]
    path = os.path.join(work, "py_model.safetensors")
    write_safetensors(path, model, {"arch": "bcae-2d", "m": "4", "n": "8", "d": "3"})
    check_dump(tool, path)
    check_copy(tool, path, os.path.join(work, "c_model.safetensors"))

    # The Python writer itself refuses what the format forbids.
    try:
        encode_safetensors([("a", np.zeros(1)), ("a", np.zeros(1))])
        check(False, "the Python writer accepted a duplicate name")
    except ValueError:
        pass
    check_refusals(tool, work)
    print("safetensors_python_interop:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
