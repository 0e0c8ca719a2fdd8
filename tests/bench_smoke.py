"""bcae bench end to end on a tiny model: the last line of stdout is one JSON object with
the keys SPEC section 7 promises, every number positive. Never asserts on speed: the
machine may be shared, and a benchmark's figures are not a test's business.

    /usr/bin/python3 tests/bench_smoke.py BCAE_BINARY
"""

import json
import math
import subprocess
import sys

REQUIRED_NUMBERS = ["encoder_wedges_per_s", "decoder_wedges_per_s", "encoder_gflops",
                    "decoder_gflops", "threads", "batch"]
ARGS = ["bench", "--m", "3", "--n", "3", "--d", "3", "--batch", "1", "--seconds", "0.2",
        "--json"]


def check(cond, what, failures):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench_smoke.py BCAE_BINARY")
    bcae = sys.argv[1]
    failures = []

    p = subprocess.run([bcae] + ARGS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    check(p.returncode == 0, f"bcae {' '.join(ARGS)} exits 0 (got {p.returncode})", failures)
    lines = p.stdout.strip().splitlines()
    try:
        obj = json.loads(lines[-1]) if lines else None
    except ValueError:
        obj = None
    check(isinstance(obj, dict), "the last line of stdout is a JSON object", failures)
    if isinstance(obj, dict):
        for key in REQUIRED_NUMBERS:
            v = obj.get(key)
            good = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and v > 0)
            check(good, f"{key} is a positive number ({v!r})", failures)
        check(obj.get("precision") == "fp32", f"precision is \"fp32\" ({obj.get('precision')!r})",
              failures)
        check(obj.get("batch") == 1, "batch is 1 as asked", failures)
        check("train_step_s" not in obj, "no train_step_s without --train", failures)

    # The reduced-precision encoders run and say so in the JSON.
    for prec in ("bf16", "int8"):
        args = [a if a != "fp32" else prec for a in ARGS]
        if "--precision" not in args:
            args += ["--precision", prec]
        p = subprocess.run([bcae] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=600)
        lines = p.stdout.strip().splitlines()
        try:
            obj = json.loads(lines[-1]) if lines else {}
        except ValueError:
            obj = {}
        check(p.returncode == 0 and obj.get("precision") == prec
              and obj.get("encoder_wedges_per_s", 0) > 0,
              f"bench --precision {prec} runs and reports it ({obj.get('precision')!r})", failures)

    # The training step in both precisions (bf16: mixed precision, docs/PRECISION.md): the
    # step's wall and CPU time are positive numbers and the precision is reported.
    for prec in ("fp32", "bf16"):
        args = ARGS + ["--train", "--precision", prec]
        p = subprocess.run([bcae] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=600)
        lines = p.stdout.strip().splitlines()
        try:
            obj = json.loads(lines[-1]) if lines else {}
        except ValueError:
            obj = {}
        check(p.returncode == 0 and obj.get("precision") == prec
              and obj.get("train_step_s", 0) > 0 and obj.get("train_step_cpu_s", 0) > 0,
              f"bench --train --precision {prec} runs and reports it ({p.stderr.strip()!r})",
              failures)

    # Usage errors exit 2, --help exits 0.
    for args, want in ((["bench", "--precision", "fp64"], 2),
                       (["bench", "--precision", "bf16", "--encoder", "layers"], 2),
                       (["bench", "--train", "--precision", "int8"], 2),
                       (["bench", "--bogus"], 2),
                       (["bench", "--batch", "0"], 2), (["bench", "--help"], 0)):
        rc = subprocess.run([bcae] + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        check(rc == want, f"bcae {' '.join(args)} exits {want} (got {rc})", failures)

    print("bench_smoke:", "PASS" if not failures else f"FAIL ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
