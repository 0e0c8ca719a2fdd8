#!/usr/bin/python3
"""Checks bcae's .npy reader and writer against NumPy itself.

usage: npy_interop.py NPY_TOOL WORK_DIR

1. NumPy writes arrays in every dtype we read (bool, u1..u8, i1..i8, f2, f4,
   f8), both byte orders, C and Fortran order, formats 1.0, 2.0 and 3.0 and
   several shapes (0-d, empty, 1-d..4-d); `npy_tool dump` must give back
   the same dtype, shape and values (NaN, inf, -0.0 and subnormals included).
2. `npy_tool convert` writes <f4 and <u2 with bcae_npy_write; NumPy must read
   them as format 1.0, C order, little-endian, 64-byte aligned, same values.
3. Dtypes we do not handle (complex, strings, structured, objects, dates,
   long double) and a truncated file must be refused with a clear error.

Run with /usr/bin/python3 (Debian's, which has numpy). A missing numpy is a
failure, not a skip: this test is the only proof that we read NumPy's files.
"""
import math
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError as e:
    print(f"npy_numpy_interop: FAILED: numpy is not importable by {sys.executable} ({e}); "
          "install python3-numpy", file=sys.stderr)
    sys.exit(1)

TOOL, WORK = sys.argv[1], sys.argv[2]
failures = []


def fail(msg):
    failures.append(msg)
    if len(failures) <= 30:
        print("FAIL:", msg, file=sys.stderr)


DTYPES = ["?", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"]
SHAPES = [(), (0,), (7,), (3, 4), (2, 3, 4), (2, 0, 3), (1, 3, 1, 2), (5, 1)]
VERSIONS = [(1, 0), (2, 0), (3, 0)]


def values(kind, shape, rng):
    """An array of `kind` (native order) with the dtype's extremes in it."""
    dt = np.dtype(kind)
    n = int(np.prod(shape)) if shape else 1
    if dt.kind == "b":
        a = rng.random(n) < 0.5
    elif dt.kind in "ui":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=n, dtype=dt, endpoint=True)
        special = [info.min, info.max, 0, 1]
        a[: min(n, 4)] = special[: min(n, 4)]
    else:
        a = (rng.standard_normal(n) * 1000).astype(dt)
        fi = np.finfo(dt)
        special = [np.nan, np.inf, -np.inf, -0.0, fi.smallest_subnormal, -fi.smallest_subnormal,
                   fi.max, fi.tiny, fi.eps]
        a[: min(n, len(special))] = np.array(special[: min(n, len(special))], dtype=dt)
    return a.reshape(shape)


def same_value(tok, v, kind):
    if np.dtype(kind).kind in "uib":
        return int(tok) == int(v)
    got, want = float(tok), float(v)
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1, got) == math.copysign(1, want)


def write(path, arr, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def dump(paths):
    out = subprocess.run([TOOL, "dump", *paths], check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split("\t")
        result[parts[0]] = parts[1:]
    return result


def check_dumped(path, fields, arr):
    if not fields or fields[0] != "ok":
        fail(f"{path}: read failed: {fields}")
        return
    dtype_name, shape_text, vals = fields[1], fields[2], fields[3] if len(fields) > 3 else ""
    want_dtype = arr.dtype.newbyteorder("<").str
    if dtype_name != want_dtype:
        fail(f"{path}: dtype {dtype_name}, want {want_dtype}")
    shape = tuple(int(s) for s in shape_text.split(",")) if shape_text else ()
    if shape != arr.shape:
        fail(f"{path}: shape {shape}, want {arr.shape}")
        return
    toks = vals.split() if vals else []
    flat = arr.ravel(order="C")
    if len(toks) != flat.size:
        fail(f"{path}: {len(toks)} values, want {flat.size}")
        return
    for i, (t, v) in enumerate(zip(toks, flat)):
        if not same_value(t, v, arr.dtype):
            fail(f"{path}: element {i} is {t}, want {v!r}")
            return


def read_back_checks(path, want):
    """Our writer's file, read by NumPy; `want` is the expected array."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    if version != (1, 0):
        fail(f"{path}: written as format {version}, want (1, 0)")
    if fortran:
        fail(f"{path}: written in Fortran order")
    if offset % 64:
        fail(f"{path}: data starts at {offset}, not a multiple of 64")
    if dtype.str != want.dtype.str or shape != want.shape:
        fail(f"{path}: header says {dtype.str} {shape}, want {want.dtype.str} {want.shape}")
    got = np.load(path, allow_pickle=False)
    if got.dtype.str != want.dtype.str or got.shape != want.shape:
        fail(f"{path}: np.load gives {got.dtype.str} {got.shape}")
    elif not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
        fail(f"{path}: values differ from the source")
    mm = np.load(path, mmap_mode="r")
    if mm.size and not np.array_equal(np.asarray(mm), got, equal_nan=want.dtype.kind == "f"):
        fail(f"{path}: memory-mapped values differ")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    rng = np.random.default_rng(20240601)

    # 1. NumPy writes, we read.
    written = {}
    for kind in DTYPES:
        orders = ["|"] if np.dtype(kind).itemsize == 1 else ["<", ">"]
        for bo in orders:
            dt = np.dtype(kind).newbyteorder(bo) if bo != "|" else np.dtype(kind)
            for shape in SHAPES:
                base = values(kind, shape, rng).astype(dt)
                for order in "CF":
                    arr = np.asfortranarray(base) if order == "F" else np.ascontiguousarray(base)
                    for ver in VERSIONS:
                        name = f"{dt.str.replace('|', 'n').replace('<', 'l').replace('>', 'b')}" \
                               f"_{'x'.join(map(str, shape)) or 'scalar'}_{order}_v{ver[0]}.npy"
                        path = os.path.join(WORK, name)
                        write(path, arr, ver)
                        written[path] = arr
        # np.save's default path as well.
        path = os.path.join(WORK, f"save_{np.dtype(kind).str[1:]}.npy")
        arr = np.asfortranarray(values(kind, (4, 3, 2), rng))
        np.save(path, arr)
        written[path] = arr
    fortran_files = sum(1 for a in written.values() if a.ndim > 1 and a.size > 1
                        and a.flags.f_contiguous and not a.flags.c_contiguous)
    results = dump(list(written))
    for path, arr in written.items():
        check_dumped(path, results.get(path), arr)
    print(f"read {len(written)} NumPy-written files ({fortran_files} in Fortran order)")

    # 2. We write <f4 and <u2, NumPy reads.
    conversions = 0
    for kind in DTYPES:
        for bo, order, shape in [("<", "C", (2, 3, 4)), (">", "F", (3, 5)), ("<", "C", (0, 2)),
                                 (">", "C", ()), ("<", "F", (192, 249, 16))]:
            if shape == (192, 249, 16) and kind not in ("u2", "f4", "i8", "f2"):
                continue
            dt = np.dtype(kind) if np.dtype(kind).itemsize == 1 else np.dtype(kind).newbyteorder(bo)
            src = values(kind, shape, rng).astype(dt)
            src = np.asfortranarray(src) if order == "F" else src
            path = os.path.join(WORK, f"src_{conversions}.npy")
            write(path, src, (1, 0))
            # <f4: our conversion goes through double, so compare against that.
            out = os.path.join(WORK, f"out_{conversions}_f4.npy")
            subprocess.run([TOOL, "convert", path, out, "f4"], check=True)
            with np.errstate(over="ignore", invalid="ignore"):
                want = src.astype(np.float64).astype("<f4")
            read_back_checks(out, np.array(want, order="C"))
            # <u2: from ADC-like integral values that every dtype can hold.
            if np.dtype(kind).kind != "b":
                top = 127 if kind == "i1" else 255 if kind == "u1" else 1024
                adc = rng.integers(0, top, size=shape).astype(dt)
                adc = np.asfortranarray(adc) if order == "F" else adc
                write(path, adc, (2, 0))
                out = os.path.join(WORK, f"out_{conversions}_u2.npy")
                subprocess.run([TOOL, "convert", path, out, "u2"], check=True)
                read_back_checks(out, np.array(adc.astype("<u2"), order="C"))
            conversions += 1
    leftovers = [f for f in os.listdir(WORK) if ".tmp" in f]
    if leftovers:
        fail(f"temporary files left behind by the writer: {leftovers[:5]}")
    print(f"wrote {conversions} arrays as <f4 (and <u2) that NumPy read back")

    # 3. What we refuse, NumPy-written.
    refused = {
        "complex": (np.zeros((2, 2), dtype="<c8"), "unsupported"),
        "unicode": (np.array(["ab", "c"]), "unsupported"),
        "bytes": (np.array([b"ab", b"c"]), "unsupported"),
        "structured": (np.zeros(3, dtype=[("a", "<u2"), ("b", "<f4")]), "unsupported"),
        "datetime": (np.zeros(3, dtype="<M8[ns]"), "unsupported"),
        "longdouble": (np.zeros(3, dtype=np.longdouble), "unsupported"),
        "object": (np.array([1, "a", None], dtype=object), "unsupported"),
    }
    paths = []
    for name, (arr, _) in refused.items():
        path = os.path.join(WORK, f"refuse_{name}.npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=True)
        paths.append(path)
    good = os.path.join(WORK, "save_u2.npy")
    with open(good, "rb") as f:
        data = f.read()
    truncated = os.path.join(WORK, "refuse_truncated.npy")
    with open(truncated, "wb") as f:
        f.write(data[:-1])
    paths.append(truncated)
    results = dump(paths)
    for path in paths:
        fields = results.get(path)
        if not fields or fields[0] != "error" or path not in fields[2]:
            fail(f"{path}: not refused with a message naming it: {fields}")
        elif "truncated" in path and "malformed" not in fields[1]:
            fail(f"{path}: status {fields[1]}, want a format error")
        elif "truncated" not in path and fields[1] != "unsupported":
            fail(f"{path}: status {fields[1]}, want unsupported")
    print(f"refused {len(paths)} files as expected")

    if failures:
        print(f"npy_numpy_interop: {len(failures)} failures", file=sys.stderr)
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    print(f"npy_numpy_interop: OK (numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
