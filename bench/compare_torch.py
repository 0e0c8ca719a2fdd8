#!/usr/bin/python3
"""Throughput of BCAE-2D in bcae and in PyTorch, side by side, in one session.

    /usr/bin/python3 bench/compare_torch.py BCAE_BINARY [--m 4 --n 8 --d 3]
        [--batch 4] [--threads 2] [--train] [--seconds 3] [--json] [--python PY]

Runs `bcae bench --json` with the given model, batch and threads, then the same model in
PyTorch (tests/torch_ref/bcae_torch.py: random weights, PyTorch's default initialisation)
on the same synthetic input, then measures the machine's fp32 peak with PyTorch, and prints
one table with both, the speed ratios (ours / torch, > 1 means bcae is faster) and our
GFLOP/s as a percentage of the measured peak.

What is timed, on both sides (SPEC 6: data already in memory, no file I/O):
  encode      the encoder, code left in memory (torch: under torch.no_grad()).
  decode      both decoder heads' raw outputs from the code (torch: decoder_clf(code) and
              decoder_reg(code) under no_grad; bcae: bcae2d_runner_decode). Neither side
              applies sigmoid / 6 + 3 exp(r) here: the same work is compared.
  train step  forward, the BCAE loss with its per-batch dynamic coefficient, backward,
              AdamW (lr 1e-3) and, in bcae, pushing the new weights into the planned
              convolutions. torch: model(x), bcae_losses, loss.backward(), opt.step().
Each pass runs once untimed, then until --seconds have passed and at least 3 times; the
median time of one batch is reported (the mean moves when another process takes a core).

Threads: torch.set_num_threads(T) here, --threads T for bcae. Idle OpenMP threads: `bcae`
waits passively unless OMP_WAIT_POLICY / GOMP_SPINCOUNT are set (tools/main.c), so this
script sets OMP_WAIT_POLICY=passive for itself (before torch loads libgomp) under the same
condition: both sides then run with the same policy.

Peak: the Debian python3-torch multiplies matrices with the reference BLAS (libblas3), far
from the machine's peak, so torch.mm is shown but the peak is the best of it and two large
convolutions run by oneDNN (the library both sides use): 3x3 256->256 channels at 64x64
(bench_conv's "peak ref") and 1x1 1024->1024 at 64x64 (a GEMM of 1024x1024 by 1024x16384).

CPU: the output and the JSON name the CPU (vendor, family/model/stepping, brand, the ISA
flags bcae dispatches on, from /proc/cpuinfo) and the kernels bcae chose (its own report,
`bcae bench --json`'s "cpu" and "encoder_kernels"), so that results from several machines
can be told apart (bench/RESULTS.md keeps a table per CPU).

--python PY runs the whole script under another interpreter, e.g. a venv with a newer
PyTorch (/work/venv-torch2/bin/python, bench/RESULTS.md says how it was made): the fastest
PyTorch on the machine is the one to compare with.

Uses numpy and torch only: run with /usr/bin/python3 (or --python).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_ref"))

# Set before torch (and its libgomp) is imported: libgomp reads the policy once, at load.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

import numpy as np  # noqa: E402

MIN_REPS = 3
# The synthetic input of `bcae bench` (tools/verb_bench.c, synth_wedge): per voxel a
# splitmix64 hash of its global index in (wedge, azimuth, z, layer) order.
OCCUPANCY = 0.11
SEED = 0x62636165
GOLDEN = 0x9E3779B97F4A7C15
WEDGE_SHAPE = (192, 249, 16)
WEDGE_VOXELS = 192 * 249 * 16


def mix64(z):
    """splitmix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def synth_wedge(index):
    """Wedge `index` of bcae bench's input: uint16 ADC (192, 249, 16), ~11% in [64, 1023]."""
    below = np.uint64(int(OCCUPANCY * (1 << 24)))
    i = np.arange(WEDGE_VOXELS, dtype=np.uint64)
    with np.errstate(over="ignore"):
        ctr = np.uint64(index * WEDGE_VOXELS + 1) + i
        h = mix64(np.uint64(SEED) + ctr * np.uint64(GOLDEN))
    adc = np.where((h >> np.uint64(40)) < below,
                   np.uint64(64) + (h & np.uint64(0xFFFFFFFF)) % np.uint64(960), np.uint64(0))
    return adc.astype(np.uint16).reshape(WEDGE_SHAPE)


# The flags bcae's kernels (and oneDNN's) dispatch on, in /proc/cpuinfo's spelling.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_info():
    """Vendor, family/model/stepping, brand and ISA flags of the first CPU in /proc/cpuinfo
    (platform's words where that file is missing)."""
    import platform
    info = {"vendor": "", "family": None, "model": None, "stepping": None,
            "brand": platform.processor() or platform.machine(), "isa": ""}
    try:
        with open("/proc/cpuinfo") as f:
            block = f.read().split("\n\n")[0]
    except OSError:
        return info
    kv = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
    kv = {k.strip(): v.strip() for k, v in kv.items()}
    info["vendor"] = kv.get("vendor_id", "")
    info["brand"] = kv.get("model name", info["brand"])
    for key, name in (("cpu family", "family"), ("model", "model"), ("stepping", "stepping")):
        if kv.get(key, "").isdigit():
            info[name] = int(kv[key])
    flags = set(kv.get("flags", "").split())
    info["isa"] = " ".join(f for f in ISA_FLAGS if f in flags)
    return info


def time_pass(fn, seconds):
    """One untimed call, then calls until `seconds` passed and MIN_REPS were timed.
    Returns (median, min, reps) in seconds."""
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < MIN_REPS or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), min(samples), len(samples)


def run_bcae(args, precision="fp32", train=None, encoder=None, chain_conv=None, decoder=None,
             decoder_precision=None, only=None):
    cmd = [args.bcae, "bench", "--m", str(args.m), "--n", str(args.n), "--d", str(args.d),
           "--batch", str(args.batch), "--threads", str(args.threads),
           "--seconds", repr(args.seconds), "--precision", precision, "--json"]
    if encoder:
        cmd += ["--encoder", encoder]
    if chain_conv:
        cmd += ["--chain-conv", chain_conv]
    if decoder:
        cmd += ["--decoder", decoder]
    if decoder_precision:
        cmd += ["--decoder-precision", decoder_precision]
    if only:
        cmd += ["--only", only]
    if args.train if train is None else train:
        cmd.append("--train")
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    lines = p.stdout.strip().splitlines()
    for line in lines[:-1]:
        print("  " + line)
    if p.returncode != 0 or not lines:
        sys.exit(f"compare_torch: bcae bench failed with status {p.returncode}")
    return json.loads(lines[-1])


def conv_flops_per_wedge(torch, module, example):
    """2 x multiply-adds of every Conv2d in `module` for one wedge, counted from the
    output shapes seen by forward hooks (an independent check of bcae's count)."""
    total = [0.0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += 2.0 * mod.in_channels * k * out[0].numel()  # out[0]: one wedge

    handles = [mod.register_forward_hook(hook) for mod in module.modules()
               if isinstance(mod, torch.nn.Conv2d)]
    with torch.no_grad():
        module(example)
    for h in handles:
        h.remove()
    return total[0]


def measure_torch(args, torch, B):
    torch.manual_seed(1)
    model = B.BCAE2D(args.m, args.n, args.d)
    adc = [synth_wedge(i) for i in range(args.batch)]
    occupancy = float(np.mean([np.count_nonzero(a) / a.size for a in adc]))
    x = torch.stack([B.wedge_to_input(a) for a in adc])
    clf, reg = model.decoder.decoder_clf, model.decoder.decoder_reg
    res = {"occupancy": occupancy}

    model.eval()
    with torch.no_grad():
        code = model.encoder(x)
        res["encoder_flops_per_wedge"] = conv_flops_per_wedge(torch, model.encoder, x[:1])
        res["decoder_flops_per_wedge"] = (conv_flops_per_wedge(torch, clf, code[:1]) +
                                          conv_flops_per_wedge(torch, reg, code[:1]))

        res["encode"] = time_pass(lambda: model.encoder(x), args.seconds)
        if args.precisions:
            # PyTorch's bf16: weights and input cast to bf16 (its oneDNN bf16 kernels).
            import copy
            enc16 = copy.deepcopy(model.encoder).to(torch.bfloat16)
            x16 = x.to(torch.bfloat16)
            res["encode_bf16"] = time_pass(lambda: enc16(x16), args.seconds)

        def decode():
            clf(code)
            reg(code)
        res["decode"] = time_pass(decode, args.seconds)
        if args.precisions:
            clf16 = copy.deepcopy(clf).to(torch.bfloat16)
            reg16 = copy.deepcopy(reg).to(torch.bfloat16)
            code16 = code.to(torch.bfloat16)

            def decode16():
                clf16(code16)
                reg16(code16)
            res["decode_bf16"] = time_pass(decode16, args.seconds)

    if args.train:
        model.train()
        opt = B.make_optimizer(model)
        coef = B.DynamicCoefficient()

        def step():
            opt.zero_grad(set_to_none=True)
            _, seg, r = model(x)
            l_seg, l_reg = B.bcae_losses(seg, r, x)
            c = coef.update(l_reg.item(), l_seg.item())
            (l_reg + c * l_seg).backward()
            opt.step()
        res["train"] = time_pass(step, args.seconds)
    return res


def measure_peak(torch, seconds):
    """fp32 GFLOP/s of large dense operations, with torch's current threads."""
    import torch.nn.functional as F
    out = {}
    with torch.no_grad():
        a = torch.randn(2048, 2048)
        b = torch.randn(2048, 2048)
        t, _, _ = time_pass(lambda: torch.mm(a, b), seconds)
        out["torch.mm 2048^3 (reference BLAS)"] = 2.0 * 2048 ** 3 / t * 1e-9
        x = torch.randn(4, 256, 64, 64)
        w = torch.randn(256, 256, 3, 3)
        t, _, _ = time_pass(lambda: F.conv2d(x, w, padding=1), seconds)
        out["conv2d 3x3 256->256 @4x64x64 (oneDNN)"] = 2.0 * 4 * 256 * 64 * 64 * 256 * 9 / t * 1e-9
        x = torch.randn(4, 1024, 64, 64)
        w = torch.randn(1024, 1024, 1, 1)
        t, _, _ = time_pass(lambda: F.conv2d(x, w), seconds)
        out["conv2d 1x1 1024->1024 @4x64x64 (oneDNN GEMM)"] = 2.0 * 4 * 1024 * 64 * 64 * 1024 / t * 1e-9
    return out


def precision_table(title, prefix, runs, t32, t16, b):
    """Prints bcae's runs (name -> bench JSON) against torch's fp32 and bf16
    times (s a batch of b) for one pass; returns the rows for the JSON."""
    print(f"torch fp32 {b / t32:.2f} wedges/s, torch bf16 {b / t16:.2f} wedges/s")
    print(f"{title:<22} {'ms':>8} {'wedges/s':>9} | {'/torch fp32':>11} {'/torch bf16':>11}")
    rows = {}
    for name, o in runs.items():
        t = o[f"{prefix}_ms_per_batch"] / 1e3
        print(f"{name:<22} {t * 1e3:8.2f} {b / t:9.2f} | {t32 / t:10.2f}x {t16 / t:10.2f}x")
        rows[name] = {"bcae_s": t, "ratio_torch_fp32": t32 / t, "ratio_torch_bf16": t16 / t}
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bcae", metavar="BCAE_BINARY")
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--train", action="store_true", help="also time a training step")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds a pass")
    ap.add_argument("--peak-seconds", type=float, default=1.0)
    ap.add_argument("--json", action="store_true", help="end with one JSON line of everything")
    ap.add_argument("--precisions", action="store_true",
                    help="also time the encoders in bf16 and int8 (bcae) and bf16 (torch), and "
                         "bcae's layer-by-layer and dense-first-layer fp32 encoders and its "
                         "chains with oneDNN's direct 3x3 convolutions (--chain-conv direct); "
                         "and the decoders in bf16 (both) and bcae's layer-by-layer fp32 "
                         "decoders (--decoder layers)")
    ap.add_argument("--python", metavar="PY",
                    help="run this script under interpreter PY (e.g. a venv's PyTorch 2.x)")
    args = ap.parse_args()
    if args.python and os.path.realpath(args.python) != os.path.realpath(sys.executable):
        argv, skip = [], False
        for a in sys.argv[1:]:
            if skip or a.startswith("--python="):
                skip = False
                continue
            if a == "--python":
                skip = True
                continue
            argv.append(a)
        os.execv(args.python, [args.python, os.path.abspath(__file__)] + argv)
    cpu = cpu_info()
    print(f"cpu: {cpu['brand']} ({cpu['vendor']}, family {cpu['family']} model {cpu['model']} "
          f"stepping {cpu['stepping']}), {os.cpu_count()} logical CPUs; isa: {cpu['isa']}",
          flush=True)

    ours = run_bcae(args)
    variants = {}
    if args.precisions:
        for prec, enc, cc in (("bf16", None, None), ("int8", None, None), ("fp32", "layers", None),
                              ("fp32", "dense", None), ("fp32", None, "direct"),
                              ("bf16", None, "direct")):
            name = f"{prec}/{enc or 'fused'}" + (f" 3x3 {cc}" if cc else "")
            variants[name] = run_bcae(args, prec, train=False, encoder=enc, chain_conv=cc)
        dec_variants = {}
        for dp, dec in (("bf16", None), ("fp32", "layers")):
            dec_variants[f"{dp}/{dec or 'fused'}"] = run_bcae(
                args, "fp32", train=False, decoder=dec, decoder_precision=dp, only="decode")

    import torch
    import bcae_torch as B
    torch.set_num_threads(args.threads)
    config = torch.__config__.show()
    dnnl = re.search(r"MKL-DNN v([0-9.]+)", config)
    isa = re.search(r"CPU capability usage: (\S+)", config)
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads, "
          f"oneDNN (MKL-DNN) {dnnl.group(1) if dnnl else '?'}, "
          f"ATen CPU capability {isa.group(1) if isa else '?'}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    theirs = measure_torch(args, torch, B)
    peak = measure_peak(torch, args.peak_seconds)
    peak_best = max(peak.values())

    b = args.batch
    rows = [("encode", "encoder", theirs["encoder_flops_per_wedge"]),
            ("decode", "decoder", theirs["decoder_flops_per_wedge"])]
    for key, prefix, flops in rows:
        mine = ours[f"{prefix}_flops_per_wedge"]
        if abs(mine - flops) > 1e-6 * flops:
            print(f"note: {prefix} FLOPs per wedge differ: bcae {mine:.6g}, torch hooks {flops:.6g}")
    if abs(ours["occupancy"] - theirs["occupancy"]) > 1e-12:
        print(f"note: input occupancy differs: bcae {ours['occupancy']}, torch {theirs['occupancy']}")

    print()
    print(f"BCAE-2D({args.m},{args.n},{args.d}), batch {b}, {args.threads} threads, fp32, "
          f"input occupancy {100 * theirs['occupancy']:.1f}%, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    hdr = (f"{'pass':<11} {'GFLOP/w':>8} | {'bcae ms':>9} {'wedges/s':>9} {'GFLOP/s':>8} "
           f"{'%peak':>6} | {'torch ms':>9} {'wedges/s':>9} {'GFLOP/s':>8} {'%peak':>6} | "
           f"{'ours/torch':>10}")
    print(hdr)
    print("-" * len(hdr))
    print(f"bcae encoder kernels: {ours.get('encoder_kernels', '?')}")
    summary = {"m": args.m, "n": args.n, "d": args.d, "batch": b, "threads": args.threads,
               "cpu": cpu, "python": sys.executable, "torch_version": torch.__version__,
               "torch_onednn_version": dnnl.group(1) if dnnl else None, "peak_gflops": peak_best, "peak": peak,
               "bcae": ours}
    table = [("encode", ours["encoder_ms_per_batch"] / 1e3, theirs["encode"][0],
              ours["encoder_flops_per_wedge"]),
             ("decode", ours["decoder_ms_per_batch"] / 1e3, theirs["decode"][0],
              ours["decoder_flops_per_wedge"])]
    if args.train:
        table.append(("train step", ours["train_step_s"], theirs["train"][0],
                      ours["train_flops_per_wedge"]))
    for name, t_ours, t_torch, flops in table:
        g_ours = flops * b / t_ours * 1e-9
        g_torch = flops * b / t_torch * 1e-9
        ratio = t_torch / t_ours
        print(f"{name:<11} {flops * 1e-9:8.3f} | {t_ours * 1e3:9.1f} {b / t_ours:9.2f} "
              f"{g_ours:8.1f} {100 * g_ours / peak_best:5.1f}% | {t_torch * 1e3:9.1f} "
              f"{b / t_torch:9.2f} {g_torch:8.1f} {100 * g_torch / peak_best:5.1f}% | "
              f"{ratio:9.2f}x")
        summary[name.replace(" ", "_")] = {
            "bcae_s": t_ours, "torch_s": t_torch, "bcae_wedges_per_s": b / t_ours,
            "torch_wedges_per_s": b / t_torch, "bcae_gflops": g_ours, "torch_gflops": g_torch,
            "bcae_pct_peak": 100 * g_ours / peak_best, "ratio": ratio}
    print("(ms: median per batch; ours/torch: torch time / bcae time, > 1 = bcae faster; "
          "train-step FLOPs = forward + both backward passes, no input gradient)")
    print("peak (fp32, torch, same threads):")
    for k, v in peak.items():
        print(f"  {k:<46} {v:8.1f} GFLOP/s{'  <- peak' if v == peak_best else ''}")
    if args.precisions:
        print()
        print(f"encoders by precision (batch {b}, {args.threads} threads)")
        summary["encoders"] = precision_table(
            "bcae encoder", "encoder", {"fp32/fused": ours, **variants}, theirs["encode"][0],
            theirs["encode_bf16"][0], b)
        summary["torch_encode_bf16_s"] = theirs["encode_bf16"][0]
        print()
        print(f"decoders by precision (both heads, batch {b}, {args.threads} threads; bcae "
              f"decoder kernels: {ours.get('decoder_kernels') or 'oneDNN layers'})")
        fp32_dec = "fp32/" + ("fused" if ours.get("decoder", "").startswith("chain") else "layers")
        summary["decoders"] = precision_table(
            "bcae decoders", "decoder", {fp32_dec: ours, **dec_variants}, theirs["decode"][0],
            theirs["decode_bf16"][0], b)
        summary["torch_decode_bf16_s"] = theirs["decode_bf16"][0]
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
