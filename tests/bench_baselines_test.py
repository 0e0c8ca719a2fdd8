"""bench_baselines end to end on a tiny simulated sample (1 event, 4 wedges): the invariants
that can break, not the figures. Lossless rows reproduce the input (bench_baselines itself
also refuses a lossless method whose output differs), every ratio is above 1, each lossy
sweep's ratio rises as its bits fall or its tolerance grows, a --model row is there, and the
rate-distortion figure is a PNG. Never asserts on speed.

    /usr/bin/python3 tests/bench_baselines_test.py BCAE BENCH_BASELINES MODEL WORKDIR zfp|nozfp
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import zlib


def check(cond, what, failures):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def png_ok(path):
    """A PNG signature, an IHDR first, an IEND last, every chunk's CRC right."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False, 0, 0
    pos, names, width, height = 8, [], 0, 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        name = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(name + body) != crc:
            return False, 0, 0
        if name == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        names.append(name)
        pos += 12 + n
    ok = pos == len(data) and names[:1] == [b"IHDR"] and names[-1:] == [b"IEND"]
    return ok, width, height


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in ("zfp", "nozfp"):
        sys.exit("usage: bench_baselines_test.py BCAE BENCH_BASELINES MODEL WORKDIR zfp|nozfp")
    bcae, bench, model, work, zfp = sys.argv[1:]
    failures = []
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    subprocess.run([bcae, "simulate", "--events", "1", "--seed", "7", "-o", data, "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    png = os.path.join(work, "rd.png")
    # One simulated event goes to the training manifest.
    args = [bench, "--data", data, "--split", "train", "--limit", "4", "--quiet", "--json",
            "--plot", png, "--model", "BCAE-2D=" + model,
            "--bcae", "paper=31.125,0.152,11.726,0.906,0.907,6900"]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    sys.stderr.write(p.stderr)
    check(p.returncode == 0, f"bench_baselines exits 0 (got {p.returncode})", failures)
    lines = p.stdout.strip().splitlines()
    try:
        obj = json.loads(lines[-1])
    except (ValueError, IndexError):
        obj = None
    check(isinstance(obj, dict), "the last line of stdout is a JSON object", failures)
    if not isinstance(obj, dict):
        print("bench_baselines_test: FAIL")
        return 1
    rows = obj["rows"]
    check(obj["wedges"] == 4, "4 wedges, as --limit asked", failures)
    kinds = {r["kind"] for r in rows}
    want = ["zstd", "sparse+zstd", "quant+zstd", "bcae", "sparse", "quantE+zstd"]
    if zfp == "zfp":
        want += ["zfp-rate", "zfp-accuracy"]
    for k in want:
        check(k in kinds, f"rows of kind {k}", failures)

    for r in rows:
        if r["external"]:
            continue
        check(r["ratio"] is not None and r["ratio"] > 1, f"{r['name']}: ratio {r['ratio']} > 1",
              failures)
        for key in ("precision", "recall"):
            v = r[key]
            check(v is not None and 0 <= v <= 1, f"{r['name']}: {key} {v} in [0, 1]", failures)
        check(r["compress_wedges_per_s"] > 0 and r["decompress_wedges_per_s"] > 0,
              f"{r['name']}: throughputs positive", failures)
        if r["lossless"]:
            check(r["mae"] == 0 and r["mse"] == 0 and r["precision"] == 1 and r["recall"] == 1
                  and r["psnr"] is None,
                  f"{r['name']}: lossless (MAE 0, precision 1, recall 1, PSNR inf)", failures)
        else:
            check(r["mae"] is not None and r["mae"] >= 0, f"{r['name']}: MAE {r['mae']} >= 0",
                  failures)

    # Each lossy family in sweep order: fewer bits / a larger tolerance -> a higher ratio.
    # (ZFP rounds tolerances down to powers of two; ours are powers of two, so strictly.)
    families = {}
    for r in rows:
        if r["kind"] in ("quant+zstd", "zfp-rate", "zfp-accuracy"):
            families.setdefault(r["family"], []).append(r)
    check(len(families) >= (5 if zfp == "zfp" else 1), f"{len(families)} lossy families",
          failures)
    for fam, rs in families.items():
        if rs[0]["kind"] == "zfp-accuracy":
            ordered = sorted(rs, key=lambda r: r["param"])
        else:
            ordered = sorted(rs, key=lambda r: -r["param"])
        ratios = [r["ratio"] for r in ordered]
        check(all(b > a for a, b in zip(ratios, ratios[1:])),
              f"{fam}: ratio rises along the sweep {['%.2f' % x for x in ratios]}", failures)
        check(sum(1 for r in rs if r["nearest"]) == 1, f"{fam}: one point nearest the target",
              failures)

    # The sparse codec: lossless at E = 0, every value within its bound E (so MAE <= E), and at
    # each bound a row of the same values through zstd (quantE+zstd, as lossy as it).
    sp = {r["param"]: r for r in rows if r["kind"] == "sparse"}
    qe = {r["param"]: r for r in rows if r["kind"] == "quantE+zstd"}
    check(sorted(sp) == [0, 0.01, 0.02, 0.05, 0.1] and sorted(qe) == [0.01, 0.02, 0.05, 0.1],
          f"sparse rows at E = {sorted(sp)}, quantE+zstd at {sorted(qe)}", failures)
    check(0 in sp and sp[0]["lossless"], "sparse E=0 is lossless", failures)
    for e, r in sp.items():
        check(r["mae"] <= e and r["precision"] == 1 and r["recall"] == 1,
              f"sparse E={e}: MAE {r['mae']:.5f} <= E, positions exact", failures)
        if e in qe:
            check(abs(qe[e]["mae"] - r["mae"]) < 1e-12,
                  f"quantE+zstd E={e} decodes to the sparse codec's values", failures)
        check(r.get("occupancy_bits_per_hit", 0) > 0 and r.get("value_bits_per_hit", 0) > 0,
              f"sparse E={e}: bits per hit reported", failures)

    bc = [r for r in rows if r["kind"] == "bcae" and not r["external"]]
    check(len(bc) == 2 and abs(bc[0]["ratio"] - 31.125) < 1e-9,
          "the --model rows: the fp16 code at ratio 31.125, and with zstd", failures)
    if len(bc) == 2:
        check(bc[1]["ratio"] > bc[0]["ratio"] and bc[1]["mae"] == bc[0]["mae"],
              "zstd on the code: a higher ratio, the same reconstruction", failures)
    given = [r for r in rows if r["external"]]
    check(len(given) == 1 and given[0]["mae"] == 0.152, "the --bcae row as given", failures)

    ok, w, h = png_ok(png) if os.path.exists(png) else (False, 0, 0)
    check(ok and w > 100 and h > 100, f"{png} is a valid PNG ({w}x{h})", failures)

    # Usage errors exit 2; --help exits 0.
    for a, want in ((["--bogus"], 2), ([], 2), (["--help"], 0)):
        rc = subprocess.run([bench] + a, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        check(rc == want, f"bench_baselines {' '.join(a)} exits {want} (got {rc})", failures)

    print("bench_baselines_test:", "PASS" if not failures else f"FAIL ({len(failures)})")
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
