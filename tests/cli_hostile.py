#!/usr/bin/python3
"""Hostile input through the command line (docs/SECURITY.md): every case must
fail cleanly -- exit status 1 (2 for bad usage), a message that names the file
and the problem, no crash, and no output file left behind -- and each has a
negative control showing that the refusal is the check's doing.

Usage: cli_hostile.py BCAE TEST_SAFETENSORS MODEL WORKDIR
  TEST_SAFETENSORS  the unit test binary, whose `copy IN OUT` mode rewrites a
                    model with our writer (which adds the checksum)
  MODEL             the shipped default model
Needs NumPy (/usr/bin/python3 on Debian); without it the test fails.
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_edit  # noqa: E402

try:
    import numpy as np
except ImportError:
    sys.stderr.write("cli_hostile.py: NumPy is required; failing, not skipping\n")
    sys.exit(1)

bcae, st_tool, model, work = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)
    return bool(cond)


def run(*args, timeout=300):
    # A FIFO that blocked would hang: the timeout turns that into a failure.
    try:
        return subprocess.run([bcae, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, -999, "", "TIMED OUT (blocked?)")


def describe(p):
    return f"rc {p.returncode}, stderr {p.stderr.strip()[-400:]!r}"


def path(*parts):
    return os.path.join(work, *parts)


def clean_failure(p, names, what, rc=1):
    """rc (default 1), every string of names in stderr, nothing on stdout."""
    ok = p.returncode == rc and all(n in p.stderr for n in names)
    return check(ok, f"{what}: {describe(p)} (want rc {rc} and {names})")


def files_under(d):
    out = []
    for root, dirs, files in os.walk(d):
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


def save_wedge(p, seed):
    rng = np.random.default_rng(seed)
    w = np.zeros((192, 249, 16), np.uint16)
    mask = rng.random(w.shape) < 0.1
    w[mask] = rng.integers(64, 1024, mask.sum())
    os.makedirs(os.path.dirname(p), exist_ok=True)
    np.save(p, w)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# ---- inputs: two wedges and a container of them -----------------------------
save_wedge(path("data", "a", "w0.npy"), 0)
save_wedge(path("data", "b", "w1.npy"), 1)
ctr = path("two.bcae")
p = run("compress", "-q", "--model", model, "-o", ctr, path("data", "a", "w0.npy"),
        path("data", "b", "w1.npy"))
check(p.returncode == 0, f"compress two wedges: {describe(p)}")


def inspect_paths(f):
    p = run("inspect", "--json", f)
    return [r["path"] for r in json.loads(p.stdout)["records"]] if p.returncode == 0 else None


# ---- 1. the .npy header-length overflow (issue 14's reproducer) ---------------
x = path("x.npy")
with open(x, "wb") as fh:
    fh.write(b"\x93NUMPY\x01\x00\x00\x00" + bytes(100000))
p = run("inspect", x)
clean_failure(p, [x, ".npy header"], "npy with header length 0")
p = run("compress", "-q", "--model", model, "-o", path("x.bcae"), x)
clean_failure(p, [x], "compress of that npy")
check(not os.path.exists(path("x.bcae")), "no container left behind by a failed compress")

# ---- 2. FIFOs are refused, not waited on -----------------------------------------
fifo_dir = path("fifo")
os.makedirs(fifo_dir)
for name in ("w.npy", "c.bcae", "m.safetensors", "test.txt"):
    os.mkfifo(os.path.join(fifo_dir, name))
f = lambda n: os.path.join(fifo_dir, n)
cases = [
    (["inspect", f("w.npy")], f("w.npy")),
    (["inspect", f("c.bcae")], f("c.bcae")),
    (["compress", "-q", "--model", model, "-o", path("f.bcae"), f("w.npy")], f("w.npy")),
    (["decompress", "-q", "--model", model, "-o", path("fout"), f("c.bcae")], f("c.bcae")),
    (["decompress", "-q", "--model", f("m.safetensors"), "-o", path("fout"), ctr],
     f("m.safetensors")),
    (["compress", "-q", "--model", model, "-o", path("f.bcae"), fifo_dir], f("test.txt")),
    (["repair", f("c.bcae")], f("c.bcae")),
    (["metrics", f("w.npy"), path("data", "a", "w0.npy")], f("w.npy")),
]
for args, name in cases:
    p = run(*args, timeout=60)
    clean_failure(p, [name, "FIFO"], f"FIFO: bcae {' '.join(args[:1])} {os.path.basename(name)}")
check(not os.path.exists(path("fout")) and not os.path.exists(path("f.bcae")),
      "nothing written after refusing a FIFO")

# ---- 3. inspect names what it found ----------------------------------------------
txt = path("notes.bcae")
with open(txt, "w") as fh:
    fh.write("hello, world\n")
p = run("inspect", model)
check(p.returncode == 0 and "bcae model" in p.stdout and "fingerprint" in p.stdout,
      f"inspect describes a model file: {describe(p)}")
# A safetensors file that is no bcae model: the loader's reason, nothing on stdout.
alien = path("alien.safetensors")
hdr = b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
with open(alien, "wb") as fh:
    fh.write(len(hdr).to_bytes(8, "little") + hdr + b"\0\0\0\0")
p = run("inspect", alien)
clean_failure(p, [alien], "inspect a safetensors file that is no bcae model")
p = run("inspect", txt)
clean_failure(p, [txt, "text", ".npy", ".bcae container"], "inspect a text file named .bcae")
bad_magic = path("badmagic.bcae")
with open(ctr, "rb") as fh:
    b = bytearray(fh.read())
b[3] ^= 0x01
with open(bad_magic, "wb") as fh:
    fh.write(b)
p = run("inspect", bad_magic)
check(p.returncode == 1 and bad_magic in p.stderr and "not a .npy file (bad magic)" not in p.stderr
      and "42 43 41 44" in p.stderr, f"inspect a .bcae with a damaged magic: {describe(p)}")
check(run("inspect", ctr).returncode == 0, "control: inspect reads the good container")

# ---- 4. decompress: symbolic links, existing files, -f ---------------------------
outside = path("outside")
os.makedirs(outside)
names = inspect_paths(ctr)
check(names == [path("data", "a", "w0.npy").lstrip("/"), path("data", "b", "w1.npy").lstrip("/")],
      f"stored names: {names}")
first_dir = names[0].split("/")[0]
out = path("out_link")
os.makedirs(out)
os.symlink(outside, os.path.join(out, first_dir))  # a folder of the record path, planted
p = run("decompress", "-q", "--model", model, "-o", out, ctr)
clean_failure(p, [os.path.join(out, first_dir), "symbolic link"], "symlinked folder in OUTDIR")
check(files_under(outside) == [] and files_under(out) == [],
      f"nothing written through the link or beside it: {files_under(outside)} {files_under(out)}")
p = run("decompress", "-q", "-f", "--model", model, "-o", out, ctr)
clean_failure(p, ["symbolic link"], "symlinked folder in OUTDIR, even with -f")
check(files_under(outside) == [], "-f does not follow the link either")

out = path("out")
p = run("decompress", "-q", "--model", model, "-o", out, ctr)
check(p.returncode == 0 and len(files_under(out)) == 2, f"decompress: {describe(p)}")
target = os.path.join(out, names[0])
before = open(target, "rb").read()
p = run("decompress", "-q", "--model", model, "-o", out, ctr)
clean_failure(p, [target, "already exists", "-f"], "decompress over existing files")
check(open(target, "rb").read() == before, "the existing file is untouched")
# A planted link at a file's own name: refused without -f, replaced (not
# followed) with it.
victim = os.path.join(outside, "victim.npy")
with open(victim, "wb") as fh:
    fh.write(b"precious")
os.remove(target)
os.symlink(victim, target)
p = run("decompress", "-q", "--model", model, "-o", out, ctr)
clean_failure(p, [target, "already exists"], "a symlink at an output name, no -f")
p = run("decompress", "-q", "-f", "--model", model, "-o", out, ctr)
check(p.returncode == 0, f"decompress -f: {describe(p)}")
check(open(victim, "rb").read() == b"precious", "-f replaced the link, did not write through it")
check(not os.path.islink(target) and np.load(target).shape == (192, 249, 16),
      "the output is a regular wedge file now")
check(not [n for n in os.listdir(os.path.dirname(target)) if ".tmp" in n],
      "no temporary files left")
p = run("decompress", "--help")
check("--force" in p.stdout and "--model-mismatch-ok" in p.stdout and "overwrite" in p.stdout,
      "decompress --help documents -f/--force and --model-mismatch-ok")
# --decoder-precision: int8 and unknown names are usage errors; bf16 (the
# fused decoders, AVX-512 CPUs) decodes nearly what fp32 does, or where it
# cannot run fails saying so, writing nothing.
for bad in ("int8", "fp64"):
    p = run("decompress", "-q", "--decoder-precision", bad, "--model", model, "-o",
            path("out_dp"), ctr)
    check(p.returncode == 2 and ("--decoder-precision" in p.stderr or bad in p.stderr),
          f"--decoder-precision {bad}: {describe(p)}")
check(not os.path.exists(path("out_dp")), "nothing written for a bad --decoder-precision")
p = run("decompress", "-q", "--decoder-precision", "bf16", "--model", model, "-o",
        path("out_dp16"), ctr)
if p.returncode == 0:
    got = np.load(os.path.join(path("out_dp16"), names[0])).astype(np.int32)
    want = np.load(os.path.join(out, names[0])).astype(np.int32)
    frac = float(np.mean(got != want))
    check(0 < frac < 0.05, f"bf16 decoders: {frac:.4f} of the voxels differ from fp32")
else:
    clean_failure(p, ["bf16"], "bf16 decoders where they cannot run")
# -f no longer means "another model": a model with other weights is refused
# and the message names the flag that allows it.
other = safetensors_edit.other_model(model, path("other.safetensors"))
p = run("decompress", "-q", "-f", "--model", other, "-o", path("out_other"), ctr)
clean_failure(p, [ctr, "another model", "--model-mismatch-ok"], "-f does not allow another model")
check(not os.path.exists(path("out_other")), "no output folder after a refusal")
p = run("decompress", "-q", "--model-mismatch-ok", "--model", other, "-o", path("out_other"), ctr)
check(p.returncode == 0, f"--model-mismatch-ok decodes: {describe(p)}")

# ---- 5. record names: '..' resolved, manifests normalised ------------------------
os.makedirs(path("data", "a", "sub"), exist_ok=True)
dd = path("dd.bcae")
rel_in = "data/a/sub/../../b/w1.npy"  # as typed: the file system resolves it to data/b
p = subprocess.run([bcae, "compress", "-q", "--model", model, "-o", "dd.bcae", rel_in], cwd=work,
                   capture_output=True, text=True)
check(p.returncode == 0 and inspect_paths(dd) == ["data/b/w1.npy"],
      f"{rel_in} is stored as data/b/w1.npy: {describe(p)} {inspect_paths(dd)}")
p = subprocess.run([bcae, "compress", "-q", "--model", model, "-o", "up.bcae",
                    "../" + os.path.basename(work) + "/data/a/w0.npy"], cwd=work,
                   capture_output=True, text=True)
check(p.returncode == 0 and inspect_paths(path("up.bcae")) == [
    os.path.basename(work) + "/data/a/w0.npy"], f"a leading '..' is dropped: {describe(p)}")
p = subprocess.run([bcae, "compress", "-q", "--model", model, "-o", "dot.bcae", "nowhere/.."],
                   cwd=work, capture_output=True, text=True)
check(p.returncode == 1 and "names no file" in p.stderr and not os.path.exists(path("dot.bcae")),
      f"'nowhere/..' names no file: {describe(p)}")
ds = path("ds")
save_wedge(os.path.join(ds, "a", "w.npy"), 2)
with open(os.path.join(ds, "test.txt"), "w") as fh:
    fh.write("./a/./w.npy\n")
p = run("compress", "-q", "--model", model, "-o", path("ds.bcae"), ds)
check(p.returncode == 0 and inspect_paths(path("ds.bcae")) == ["a/w.npy"],
      f"compress takes the manifest line ./a/./w.npy as a/w.npy: {describe(p)}")
p = run("eval", "-q", "--model", model, "--data", ds, "--split", "test")
check(p.returncode == 0, f"eval takes the same manifest: {describe(p)}")

# ---- 6. repeated record paths ------------------------------------------------------
size0 = os.path.getsize(ctr)
raw0 = open(ctr, "rb").read()
p = run("compress", "-q", "--append", "--model", model, "-o", ctr, path("data", "a", "w0.npy"))
clean_failure(p, [ctr, names[0], "already has a record"], "compress --append of a stored input")
check(open(ctr, "rb").read() == raw0, "the container is unchanged after the refusal")
save_wedge(path("data", "c", "w2.npy"), 3)
p = run("compress", "-q", "--append", "--model", model, "-o", ctr, path("data", "c", "w2.npy"))
check(p.returncode == 0 and len(inspect_paths(ctr)) == 3, f"control: a new input appends: {describe(p)}")
# A container that repeats a path (another writer's): decompress refuses it
# before writing anything.
hdr = 64 + raw0[42] + 4
plen = struct.unpack_from("<H", raw0, hdr + 4)[0]
stored = struct.unpack_from("<I", raw0, hdr + 32)[0]
rec = raw0[hdr:hdr + 44 + plen + stored]
end = b"BEND" + struct.pack("<Q", 3)
dup_bytes = raw0[:size0 - 16] + rec + end + struct.pack("<I", crc32c(end))
dup = path("dup.bcae")
with open(dup, "wb") as fh:
    fh.write(dup_bytes)
check(inspect_paths(dup) == [names[0], names[1], names[0]], "the crafted file is a valid container")
p = run("decompress", "-q", "--model", model, "-o", path("out_dup"), dup)
clean_failure(p, [dup, "record 2", names[0], "earlier record"], "decompress of repeated paths")
check(not os.path.exists(path("out_dup")), "nothing written (not even OUTDIR) for repeated paths")

# ---- 7. a container damaged in its first record leaves nothing behind (the records
# before a damaged one are written: cli_nonfinite checks that) -----------------------
bad = bytearray(raw0)
bad[hdr + 44 + plen + 100] ^= 0x20  # a payload byte of record 0
badf = path("bad.bcae")
with open(badf, "wb") as fh:
    fh.write(bad)
p = run("decompress", "-q", "--model", model, "-o", path("out_bad"), badf)
clean_failure(p, [badf, "record 0", "CRC"], "decompress of a damaged container")
check(not os.path.exists(path("out_bad")), "nothing written for a damaged container")

# ---- 8. the model checksum --------------------------------------------------------------
summed = path("summed.safetensors")
r = subprocess.run([st_tool, "copy", model, summed], capture_output=True, text=True)
check(r.returncode == 0, f"copy the model with our writer: {r.stderr}")
p = run("decompress", "-q", "--model", summed, "-o", path("out_sum"), ctr)
check(p.returncode == 0, f"control: the checksummed copy loads: {describe(p)}")
with open(summed, "rb") as fh:
    s = bytearray(fh.read())
s[-3] ^= 0x01
flipped = path("flipped.safetensors")
with open(flipped, "wb") as fh:
    fh.write(s)
p = run("decompress", "-q", "--model", flipped, "-o", path("out_flip"), ctr)
clean_failure(p, [flipped, "checksum mismatch"], "a model with a flipped weight byte")
check(not os.path.exists(path("out_flip")), "nothing written with a damaged model")

# BF16 tensors are named as such when a model refuses them.
header, data = safetensors_edit.read(flipped)
name = next(k for k in header if k != "__metadata__")
t = header[name]
t["dtype"] = "BF16"
t["shape"] = t["shape"] + [2]
bf16 = safetensors_edit.write(path("bf16.safetensors"), safetensors_edit.drop_checksum(header),
                              data)
p = run("decompress", "-q", "--model", bf16, "-o", path("out_bf16"), ctr)
clean_failure(p, [bf16, f"'{name}' is BF16 ("], "a BF16 tensor is shown as BF16, not '?'")

# ---- 9. simulate: event numbers that would wrap --------------------------------------
top = str(2**64 - 1)
for args in (["--first-event", top, "--events", "2"],
             ["--first-event", str(2**64 - 2), "--events", "3"],
             ["--first-event", str(2**64)],
             ["--first-event", "-1"],
             ["--events", "0"],
             ["--events", "10000001"]):
    p = run("simulate", "-q", "--out", path("sim_bad"), *args)
    clean_failure(p, ["--"], f"simulate {' '.join(args)}", rc=2)
    check(not os.path.exists(path("sim_bad")), f"simulate {' '.join(args)} writes nothing")
# Control: the largest first event with one event passes the range check
# (and then stops at the existing dataset, exit 1, not 2).
os.makedirs(path("sim_ok", "outer"))
open(path("sim_ok", "outer", "train.txt"), "w").close()
p = run("simulate", "-q", "--out", path("sim_ok"), "--first-event", top, "--events", "1")
check(p.returncode == 1 and "already holds a dataset" in p.stderr,
      f"--first-event 2^64-1 --events 1 is in range: {describe(p)}")

# ---- 10. bcae repair -----------------------------------------------------------------------
torn = path("torn.bcae")
full = open(ctr, "rb").read()  # three records now
with open(torn, "wb") as fh:
    fh.write(full[:-16 - 100])  # no end marker, record 2 cut short
p = run("inspect", torn)
check(p.returncode == 1 and "truncated" in p.stderr, f"inspect sees the tear: {describe(p)}")
p = run("compress", "-q", "--append", "--model", model, "-o", torn, path("data", "c", "w2.npy"))
clean_failure(p, [torn, "bcae repair"], "append to a torn file names 'bcae repair'")
p = run("repair", torn)
check(p.returncode == 0 and "dropped" in p.stdout and "2 intact records" in p.stdout,
      f"repair: {describe(p)} {p.stdout!r}")
check(inspect_paths(torn) == names, "after repair the two intact records read")
again = open(torn, "rb").read()
p = run("repair", torn)
check(p.returncode == 0 and "nothing to do" in p.stdout and open(torn, "rb").read() == again,
      f"repairing a complete file changes nothing: {p.stdout!r}")
damaged = bytearray(full[:-16 - 100])
damaged[hdr + 44 + plen + 7] ^= 0x01
with open(torn, "wb") as fh:
    fh.write(damaged)
p = run("repair", torn)
clean_failure(p, [torn, "record 0", "CRC"], "repair refuses a damaged record")
check(open(torn, "rb").read() == damaged, "the damaged file is left as it was")
for args, rc in ((["repair"], 2), (["repair", "a", "b"], 2), (["repair", "--bogus"], 2),
                 (["repair", "--help"], 0)):
    check(run(*args).returncode == rc, f"bcae {' '.join(args)} exits {rc}")
check("repair" in run("--help").stdout, "bcae --help lists repair")

print(f"cli_hostile: {len(failures)} failures")
sys.exit(1 if failures else 0)
