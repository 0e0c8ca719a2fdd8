#!/usr/bin/python3
"""Non-finite numbers never pass silently, and decoding is a pure function of the container
and the model (ctest cli_nonfinite).

    cli_nonfinite.py BCAE_BINARY MODEL.safetensors WORK_DIR

- a weights file with one NaN (or one +Inf) in a tensor: compress, forward, eval and
  decompress fail with rc 1, naming the tensor, and leave no output behind;
- weights that are finite but ~3e38: compress and forward fail (non-finite code), no output;
- a container whose fp16 codes hold NaN / Inf under valid CRCs: decompress fails naming the
  record's index and path, and writes nothing for it;
- decompress gives the same bytes for --batch 1, 3, 4, 5 and --threads 1, 2;
- a damaged record k: every record before it is written, whatever --batch.
Exits 0 when everything holds.
"""

import os
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bcae_reader import crc32c  # noqa: E402
import safetensors_edit  # noqa: E402

bcae, model, work = (os.path.abspath(a) for a in sys.argv[1:4])
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = 0


def check(cond, what):
    global failures
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    failures += not cond


def run(*args):
    return subprocess.run([bcae] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=600)


header, data = safetensors_edit.read(model)
# The weights are edited below: a checksum of the original ones would refuse them first.
safetensors_edit.drop_checksum(header)
names = [k for k in header if k != "__metadata__"]
victim = sorted(names)[len(names) // 2]
off = header[victim]["data_offsets"][0]

sim = os.path.join(work, "sim")
r = run("simulate", "--events", "1", "--seed", "5", "--out", sim, "--quiet")
check(r.returncode == 0, "simulate one event")
wedges = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(sim) for f in fs if f.endswith(".npy"))[:10]

for label, value in (("NaN", float("nan")), ("+Inf", float("inf"))):
    bad = os.path.join(work, f"bad_{label[-3:]}.safetensors")
    d = bytearray(data)
    struct.pack_into("<f", d, off + 4, value)
    safetensors_edit.write(bad, header, d)
    out = os.path.join(work, f"out_{label[-3:]}")
    for verb, args in (("compress", ["-o", out + ".bcae"] + wedges[:2]),
                       ("forward", ["-o", out] + wedges[:1]),
                       ("eval", ["--json", "--data", sim, "--split", "test"])):
        r = run(verb, "-m", bad, *args)
        check(r.returncode == 1 and victim in r.stderr and "non-finite" in r.stderr,
              f"{verb} with a {label} in '{victim}': rc {r.returncode}, names the tensor")
    check(not os.path.exists(out + ".bcae") and not os.path.exists(out), f"no output left ({label})")

# Finite weights whose code overflows.
huge = os.path.join(work, "huge.safetensors")
d = bytearray(data)
for k in names:
    if header[k]["dtype"] == "F32":
        a, b = header[k]["data_offsets"]
        d[a:b] = np.full((b - a) // 4, 3e38, "<f4").tobytes()
safetensors_edit.write(huge, header, d)
r = run("compress", "-m", huge, "-o", os.path.join(work, "huge.bcae"), wedges[0])
check(r.returncode == 1 and "non-finite code" in r.stderr, f"compress with ~3e38 weights fails: {r.stderr.strip()[:120]}")
check(not os.path.exists(os.path.join(work, "huge.bcae")), "no container left")
r = run("forward", "-m", huge, "-o", os.path.join(work, "huge_fw"), wedges[0])
check(r.returncode == 1 and "non-finite" in r.stderr, "forward with ~3e38 weights fails")

# ---- a good container, then codes made NaN under valid CRCs
ctr = os.path.join(work, "good.bcae")
r = run("compress", "-m", model, "-o", ctr, *wedges)
check(r.returncode == 0, "compress 10 wedges")
raw = bytearray(open(ctr, "rb").read())
alen = raw[42]
pos = 64 + alen + 4
records = []
while raw[pos:pos + 4] == b"BREC":
    P, = struct.unpack_from("<H", raw, pos + 4)
    S, = struct.unpack_from("<I", raw, pos + 32)
    records.append((pos, P, S, raw[pos + 40:pos + 40 + P].decode()))
    pos += 44 + P + S
check(len(records) == 10 and raw[pos:pos + 4] == b"BEND", "10 raw records and an end marker")


def with_payload_value(k, bits):
    out = bytearray(raw)
    p, P, S, _ = records[k]
    struct.pack_into("<H", out, p + 40 + P + 2 * 100, bits)
    struct.pack_into("<I", out, p + 40 + P + S, crc32c(bytes(out[p:p + 40 + P + S])))
    return out


for label, bits in (("NaN", 0x7E00), ("Inf", 0x7C00)):
    path = os.path.join(work, f"code_{label}.bcae")
    open(path, "wb").write(with_payload_value(3, bits))
    outdir = os.path.join(work, f"dec_{label}")
    r = run("decompress", "-m", model, "-o", outdir, path)
    check(r.returncode == 1 and "non-finite" in r.stderr and records[3][3] in r.stderr,
          f"decompress of a {label} code fails naming record 3 ({records[3][3]}): {r.stderr.strip()[:160]}")
    written = [os.path.join(dp, f) for dp, _, fs in os.walk(outdir) for f in fs] if os.path.isdir(outdir) else []
    check(not any(records[3][3] in w for w in written), f"nothing written for the {label} record")

# ---- decoding: the same bytes for any batch and thread count
ref = None
for batch, threads in ((4, 2), (1, 1), (3, 2), (5, 1), (4, 1)):
    outdir = os.path.join(work, f"dec_b{batch}_t{threads}")
    r = run("decompress", "-m", model, "--batch", batch, "--threads", threads, "-o", outdir, ctr)
    check(r.returncode == 0, f"decompress --batch {batch} --threads {threads}")
    got = {rel: open(os.path.join(outdir, rel), "rb").read() for _, _, _, rel in records}
    if ref is None:
        ref = got
    else:
        same = all(got[k] == ref[k] for k in ref)
        check(same, f"--batch {batch} --threads {threads}: byte-identical to --batch 4 --threads 2")

# ---- recovery: damage record 6, every record before it is written at any batch
dam = bytearray(raw)
p, P, S, _ = records[6]
dam[p + 40 + P + 7] ^= 0xFF  # payload byte: the record CRC no longer matches
damaged = os.path.join(work, "damaged.bcae")
open(damaged, "wb").write(dam)
for batch in (1, 4, 8):
    outdir = os.path.join(work, f"rec_b{batch}")
    r = run("decompress", "-m", model, "--batch", batch, "-o", outdir, damaged)
    have = [rel for _, _, _, rel in records if os.path.exists(os.path.join(outdir, rel))]
    check(r.returncode == 1 and have == [rel for _, _, _, rel in records[:6]],
          f"--batch {batch}: rc {r.returncode}, records 0-5 written before the damaged 6 ({len(have)} written)")
    check(all(open(os.path.join(outdir, rel), "rb").read() == ref[rel] for rel in have),
          f"--batch {batch}: the recovered records are the intact decode")

print("cli_nonfinite:", "FAILED" if failures else "ok")
sys.exit(1 if failures else 0)
