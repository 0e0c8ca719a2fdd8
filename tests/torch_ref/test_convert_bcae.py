#!/usr/bin/python3
"""The checkpoint converter on the 3D models' released forms (ctest convert_checkpoint_3d).

    test_convert_bcae.py BCAE_BINARY WORK_DIR

1. The original BCAE as its release saves it: our PyTorch model (random weights, every
   rezero_alpha random non-zero) written as two plain state dicts, encoder_2000.pt and
   decoder_2000.pt, keys without prefixes. tools/convert_checkpoint.py turns them into one
   safetensors file (arch bcae, log 0, features), whose tensors must equal the state dicts;
   `bcae forward` on simulated wedges must match PyTorch in float64 (code, seg, reg, recon
   <= 1e-4 relative, parity_forward3d.py's rules), reg and recon in raw ADC.
2. A BCAE-HT and a BCAE++ with other widths in the second repository's form: converted,
   arch and features right, tensors equal, loadable by the C loader (`bcae forward` runs).
3. Broken checkpoints are refused with a message: a missing tensor, a mis-shaped one.
Exits 0 when everything holds.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402
import parity_forward3d as P  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402

CONVERTER = os.path.join(HERE, "..", "..", "tools", "convert_checkpoint.py")


def convert(*args):
    r = subprocess.run([sys.executable, CONVERTER] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    print("  convert:", r.stdout.strip())
    return r.returncode, r.stdout


def save_release(model, d, enc="encoder_2000.pt", dec="decoder_2000.pt"):
    os.makedirs(d, exist_ok=True)
    torch.save(model.encoder.state_dict(), os.path.join(d, enc))
    torch.save(model.decoder.state_dict(), os.path.join(d, dec))
    return os.path.join(d, enc), os.path.join(d, dec)


def same_tensors(model, path):
    tensors, meta, _ = read_safetensors(path)
    sd = model.state_dict()
    ok = list(tensors) == list(sd) and all(
        np.array_equal(tensors[k], v.numpy()) for k, v in sd.items())
    return ok, meta


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bcae, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    torch.set_num_threads(2)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    failures = 0

    def check(cond, what):
        nonlocal failures
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        failures += not cond

    print("== the original BCAE, released form")
    model = P.random_model("bcae", 21)
    enc, dec = save_release(model, os.path.join(work, "release"))
    out = os.path.join(work, "bcae.safetensors")
    rc, _ = convert(enc, dec, out)
    check(rc == 0, "converted")
    if rc == 0:
        ok, meta = same_tensors(model, out)
        check(ok, "tensors equal the state dicts, in state-dict order")
        check(meta.get("arch") == "bcae" and meta.get("log") == "0" and
              meta.get("features") == "8,16,32,32", f"metadata {meta}")
        data = os.path.join(work, "data")
        P.run([bcae, "simulate", "--events", "1", "--seed", "9", "--out", data, "-q"])
        wedges = B.manifest(data, "train")[:2]
        ref, _ = P.reference(model, wedges)
        c_dir = os.path.join(work, "c_bcae")
        P.run([bcae, "forward", "--model", out, "--out", c_dir, "--threads", "2"] + wedges)
        failures += P.check_outputs("bcae", ref, P.load_outputs(c_dir))
        # Raw ADC: reg >= 64 wherever it is defined.
        check(float(np.min(np.load(os.path.join(c_dir, "reg.npy")))) >= 64.0,
              "reg is raw ADC (>= 64)")
        # The folder form finds encoder_2000.pt / decoder_2000.pt.
        rc, _ = convert(os.path.join(work, "release"), os.path.join(work, "bcae2.safetensors"))
        check(rc == 0 and open(out, "rb").read() ==
              open(os.path.join(work, "bcae2.safetensors"), "rb").read(), "folder form, same file")

    print("== BCAE-HT and a BCAE++ of other widths, second repository's form")
    for arch, feats in (("bcae-ht", None), ("bcae++", (4, 8, 16, 16))):
        torch.manual_seed(3)
        m = B.BCAE3D(arch, feats)
        B.randomize_rezero(m, torch.Generator().manual_seed(4))
        e, d = save_release(m, os.path.join(work, arch), "enc_last.pth", "dec_last.pth")
        path = os.path.join(work, f"{arch}.safetensors")
        rc, _ = convert(e, d, path)
        check(rc == 0, f"{arch} converted")
        if rc == 0:
            ok, meta = same_tensors(m, path)
            check(ok and meta.get("arch") == arch and meta.get("log") == "1" and
                  meta.get("features") == ",".join(str(f) for f in m.features),
                  f"{arch}: tensors and metadata {meta}")
            r = subprocess.run([bcae, "forward", "--model", path, "--out",
                                os.path.join(work, f"c_{arch}"), "--threads", "2",
                                B.manifest(os.path.join(work, "data"), "train")[0]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            check(r.returncode == 0, f"{arch}: bcae forward loads it ({r.stdout.strip()[-200:]})")

    print("== broken checkpoints")
    sd = model.encoder.state_dict()
    broken = os.path.join(work, "broken")
    os.makedirs(broken)
    missing = {k: v for k, v in sd.items() if "encoder_block_2.main_block.3.bias" not in k}
    torch.save(missing, os.path.join(broken, "enc.pt"))
    torch.save(model.decoder.state_dict(), os.path.join(broken, "dec.pt"))
    rc, msg = convert(os.path.join(broken, "enc.pt"), os.path.join(broken, "dec.pt"),
                      os.path.join(broken, "x.safetensors"))
    check(rc != 0 and "missing layers.encoder_block_2.main_block.3.bias" in msg,
          "a missing tensor is named")
    bad = dict(sd)
    bad["layers.encoder_block_1.side_block.0.weight"] = torch.zeros(16, 8, 4, 4, 4)
    torch.save(bad, os.path.join(broken, "enc.pt"))
    rc, msg = convert(os.path.join(broken, "enc.pt"), os.path.join(broken, "dec.pt"),
                      os.path.join(broken, "x.safetensors"))
    check(rc != 0 and "side_block.0.weight has shape [16, 8, 4, 4, 4]" in msg,
          "a mis-shaped tensor is named")
    check(not os.path.exists(os.path.join(broken, "x.safetensors")), "nothing written")

    print("convert_checkpoint_3d:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
