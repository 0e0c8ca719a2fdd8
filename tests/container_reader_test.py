#!/usr/bin/python3
"""The .bcae format against an independent reader, and `bcae inspect` on containers.

tests/bcae_reader.py was written from docs/FORMAT.md alone. Here the C writer
(through tests/container_tool) writes BCAE-2D-shaped codes, raw, with zstd and
appended, and the Python reader must return the same codes, fp16-exact, as
NumPy's own float32 -> float16 rounding of the input. Then `bcae inspect` (text
and --json) must describe the same files, detect containers by their magic,
and fail cleanly (exit 1, naming the file and the record, no JSON) on damage.

Usage: container_reader_test.py CONTAINER_TOOL BCAE WORKDIR
NumPy is required (/usr/bin/python3 on Debian): without it the test fails,
never skips. Without the `zstd` command the Python reader skips zstd records
(and says so); raw records are always decoded and checked.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    sys.stderr.write("container_reader_test.py: NumPy is required; failing, not skipping\n")
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bcae_reader  # noqa: E402

CODE = (32, 24, 32)
WEDGE = (192, 249, 16)
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL", what)
    return bool(cond)


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def describe(p):
    return f"rc {p.returncode}, stdout {p.stdout[:300]!r}, stderr {p.stderr[:300]!r}"


def wedge_path(i):
    return f"12-2_{i % 12}-{(i // 12) % 2}/sim1_{i:06d}.npy"


def make_codes(n, rng):
    """float32 codes of three kinds: smooth (zstd shrinks them), values over
    fp16's whole range that need rounding (subnormals, overflow to inf), and
    random fp16 bit patterns (incompressible: stored raw even with --zstd).
    Each starts with the awkward cases: ties, -0, NaN, infinities."""
    codes = np.empty((n,) + CODE, np.float32)
    for i in range(n):
        if i % 3 == 0:
            c = np.round(rng.normal(0, 2, CODE) * 4) / 4
        elif i % 3 == 1:
            c = rng.normal(0, 1, CODE) * 10.0 ** rng.uniform(-8, 5, CODE)
        else:
            c = rng.integers(0, 65536, CODE, dtype=np.uint16).view(np.float16).astype(np.float32)
        flat = c.reshape(-1)
        flat[:12] = [0.0, -0.0, np.nan, np.inf, -np.inf, 65504.0, 65520.0, 1e-8, 6e-8,
                     1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, -(2.0 ** -24) * 1.5]
        codes[i] = c
    return codes.astype(np.float32)


def f16(a):
    """NumPy's float32 -> float16 (round to nearest even; overflow is inf)."""
    with np.errstate(over="ignore"):
        return a.astype(np.float16)


def same_f16(got, want):
    """Bit-exact, except that any NaN equals any NaN (payloads may differ)."""
    g, w = got.view(np.uint16), want.view(np.uint16)
    both_nan = np.isnan(got) & np.isnan(want)
    return bool(np.all((g == w) | both_nan))


def check_file(path, codes, first, what, zstd_cli):
    try:
        header, recs = bcae_reader.read(path)
    except Exception as e:  # noqa: BLE001
        check(False, f"{what}: the Python reader failed: {e}")
        return None
    want_fp = hashlib.sha256(b"bcae container_tool").hexdigest()
    check(header["fingerprint"] == want_fp and header["arch"] == "bcae-2d"
          and tuple(header["code_shape"]) == CODE, f"{what}: header {header}")
    check(len(recs) == len(codes), f"{what}: {len(recs)} records, expected {len(codes)}")
    skipped = decoded = 0
    for i, (rec, code) in enumerate(zip(recs, codes)):
        check(rec["path"] == wedge_path(first + i) and tuple(rec["orig_shape"]) == WEDGE,
              f"{what}: record {i}: path {rec['path']!r}, shape {rec['orig_shape']}")
        if rec["code"] is None:
            check(rec["encoding"] == 1 and not zstd_cli,
                  f"{what}: record {i} skipped: {rec['skipped']}")
            skipped += 1
            continue
        decoded += 1
        check(same_f16(rec["code"], f16(code)),
              f"{what}: record {i}: code differs from float16(code.npy)")
    if skipped:
        print(f"{what}: {skipped} zstd records skipped (no zstd command), {decoded} decoded")
    return recs


def main():
    tool, bcae, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    zstd_cli = shutil.which("zstd") is not None
    print(f"zstd command: {'found' if zstd_cli else 'absent: zstd records are skipped'}")
    rng = np.random.default_rng(20240601)
    codes = make_codes(24, rng)
    code_npy = os.path.join(work, "code.npy")
    np.save(code_npy, codes)

    # Raw: every record decoded by the independent reader.
    raw = os.path.join(work, "raw.bcae")
    p = run(tool, "write", raw, code_npy)
    check(p.returncode == 0, f"container_tool write: {describe(p)}")
    recs = check_file(raw, codes, 0, "raw", zstd_cli) or []
    check(all(r["encoding"] == 0 for r in recs), "raw file has only raw records")
    size = os.path.getsize(raw)
    ratio = len(codes) * np.prod(WEDGE) * 2 / size
    check(ratio >= 31, f"raw BCAE-2D file: ratio {ratio:.4f} >= 31")

    # The C reader's view (dump) equals the same rounding.
    dumped = os.path.join(work, "dump.npy")
    p = run(tool, "dump", raw, dumped)
    check(p.returncode == 0 and len(p.stdout.splitlines()) == len(codes), f"dump: {describe(p)}")
    if p.returncode == 0:
        back = np.load(dumped)
        check(back.shape == codes.shape
              and same_f16(f16(back), f16(codes)),
              "container_tool dump returns float16(code.npy)")

    # zstd level 3: smooth codes compress (zstd records), noise falls back to raw.
    zfile = os.path.join(work, "zstd3.bcae")
    p = run(tool, "write", zfile, code_npy, "--zstd", "3")
    check(p.returncode == 0, f"container_tool write --zstd 3: {describe(p)}")
    recs = check_file(zfile, codes, 0, "zstd 3", zstd_cli) or []
    encs = [r["encoding"] for r in recs]
    check(1 in encs and 0 in encs, f"zstd file mixes zstd and raw records: {encs}")
    check(os.path.getsize(zfile) < size, "zstd file is smaller than the raw one")

    # Append: continues the numbering; old and new records read back.
    more = make_codes(5, rng)
    more_npy = os.path.join(work, "more.npy")
    np.save(more_npy, more)
    p = run(tool, "append", zfile, more_npy, "--zstd", "19")
    check(p.returncode == 0, f"container_tool append: {describe(p)}")
    check_file(zfile, np.concatenate([codes, more]), 0, "appended", zstd_cli)
    p = run(tool, "append", zfile, more_npy, "--fingerprint", "00" * 32)
    check(p.returncode == 1 and "another model" in p.stderr, f"append, wrong model: {describe(p)}")

    # Damage: the Python reader refuses it as well.
    data = bytearray(open(raw, "rb").read())
    bad = os.path.join(work, "flipped.bcae")
    rec_bytes = 44 + len(wedge_path(0)) + 2 * int(np.prod(CODE))
    flip_at = 75 + 2 * rec_bytes + 40 + 24 + 1000  # inside record 2's payload
    data[flip_at] ^= 0x04
    open(bad, "wb").write(data)
    try:
        bcae_reader.read(bad)
        check(False, "Python reader accepted a flipped payload bit")
    except ValueError as e:
        check("record 2" in str(e), f"Python reader names record 2: {e}")

    check_inspect(bcae, work, raw, zfile, bad, codes)
    print(f"container_reader_test: {checks} checks, {len(failures)} failed")
    return 1 if failures else 0


def check_inspect(bcae, work, raw, zfile, bad, codes):
    n = len(codes)
    p = run(bcae, "inspect", "--help")
    check(p.returncode == 0 and ".bcae" in p.stdout, f"inspect --help mentions .bcae: {describe(p)}")
    p = run(bcae, "inspect", "--json", raw)
    if check(p.returncode == 0 and len(p.stdout.splitlines()) == 1, f"inspect --json: {describe(p)}"):
        j = json.loads(p.stdout)
        for key in ("version", "arch", "fingerprint", "code_shape", "records", "file_bytes",
                    "ratio"):
            check(key in j, f"inspect --json has {key}")
        size = os.path.getsize(raw)
        check(j.get("version") == 1 and j.get("arch") == "bcae-2d"
              and j.get("fingerprint") == hashlib.sha256(b"bcae container_tool").hexdigest()
              and j.get("code_shape") == list(CODE), f"inspect --json header: {p.stdout[:300]}")
        recs = j.get("records", [])
        check(len(recs) == n and all(r["path"] == wedge_path(i) and r["encoding"] == "raw"
                                     and r["bytes"] == 2 * int(np.prod(CODE))
                                     for i, r in enumerate(recs)), "inspect --json records")
        check(j.get("file_bytes") == size, f"file_bytes {j.get('file_bytes')} == {size}")
        want = n * int(np.prod(WEDGE)) * 2 / size
        check(abs(j.get("ratio", 0) - want) < 1e-9 and j["ratio"] >= 31,
              f"ratio {j.get('ratio')} == {want}")
    p = run(bcae, "inspect", "--json", zfile)
    if check(p.returncode == 0, f"inspect --json zstd: {describe(p)}"):
        j = json.loads(p.stdout)
        check({r["encoding"] for r in j["records"]} == {"raw", "zstd"}
              and j["file_bytes"] == os.path.getsize(zfile), "inspect --json zstd records")
    p = run(bcae, "inspect", raw)
    check(p.returncode == 0 and "bcae-2d" in p.stdout and f"wedges        {n}" in p.stdout
          and wedge_path(n - 1) in p.stdout and "ratio" in p.stdout, f"inspect text: {describe(p)}")

    # By magic, not by name.
    disguised = os.path.join(work, "codes.npy")
    shutil.copy(raw, disguised)
    p = run(bcae, "inspect", "--json", disguised)
    check(p.returncode == 0 and '"records"' in p.stdout, f"a .bcae named .npy: {describe(p)}")
    npy_named = os.path.join(work, "wedge.bcae")
    np.save(npy_named + ".npy", np.zeros((2, 3), np.uint16))
    os.rename(npy_named + ".npy", npy_named)
    p = run(bcae, "inspect", "--json", npy_named)
    check(p.returncode == 0 and '"dtype"' in p.stdout, f"a .npy named .bcae: {describe(p)}")

    # Damage: exit 1, the file and record named, nothing on stdout with --json;
    # the text listing shows the intact records first.
    p = run(bcae, "inspect", "--json", bad)
    check(p.returncode == 1 and p.stdout == "" and bad in p.stderr and "record 2" in p.stderr
          and "CRC mismatch" in p.stderr, f"inspect --json damaged: {describe(p)}")
    p = run(bcae, "inspect", bad)
    check(p.returncode == 1 and wedge_path(1) in p.stdout and wedge_path(2) not in p.stdout
          and "first 2 records" in p.stderr, f"inspect text damaged: {describe(p)}")
    data = open(raw, "rb").read()
    rec_bytes = 44 + len(wedge_path(0)) + 2 * int(np.prod(CODE))
    cuts = {"mid-record-5": 75 + 5 * rec_bytes + 100, "boundary-after-7": 75 + 8 * rec_bytes,
            "header": 30, "end-marker": len(data) - 5}
    for name, cut in cuts.items():
        path = os.path.join(work, f"cut-{name}.bcae")
        open(path, "wb").write(data[:cut])
        p = run(bcae, "inspect", "--json", path)
        check(p.returncode == 1 and p.stdout == "" and path in p.stderr
              and "truncated" in p.stderr, f"inspect {name}: {describe(p)}")
    p = run(bcae, "inspect", os.path.join(work, "cut-mid-record-5.bcae"))
    check("record 5" in p.stderr, f"truncation names record 5: {describe(p)}")
    p = run(bcae, "inspect", os.path.join(work, "cut-boundary-after-7.bcae"))
    check("after record 7" in p.stderr, f"truncation at a boundary: {describe(p)}")
    wrong = os.path.join(work, "future.bcae")
    open(wrong, "wb").write(data[:4] + b"\x03\x00" + data[6:])
    p = run(bcae, "inspect", wrong)
    check(p.returncode == 1 and "version 3" in p.stderr, f"future version: {describe(p)}")


if __name__ == "__main__":
    sys.exit(main())
