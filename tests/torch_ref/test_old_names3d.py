#!/usr/bin/python3
"""BCAE++ / BCAE-HT files under the names bcae wrote before 2026-12-06 (ctest model3d_old_names).

    test_old_names3d.py BCAE_BINARY WORK_DIR

The output layers are now `encoder.layers.encoder_output.0.*` and
`decoder.decoder_{clf,reg}.layers.decoder_output.0.*` (SPEC 3, the reference's names); files
written before carry them without `layers.`, and bcae still loads those (bcae3d_old_name).
For a random BCAE-HT, a file in each naming holding the same data:
  1. `bcae forward` gives byte-identical outputs from both;
  2. `bcae train --init` from both gives byte-identical weights and log after 2 steps;
  3. a checkpoint renamed to the old names (weights and AdamW moments) resumes to the same
     bytes as the original checkpoint;
  4. the original BCAE gets no alias: its names were always the reference's.
Exits 0 when everything holds.
"""

import filecmp
import os
import re
import shutil
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402

NEW = re.compile(r"(^|\.)(encoder\.|decoder_clf\.|decoder_reg\.)layers\.(encoder_output|decoder_output)\.")


def to_old_names(src, dst):
    """A copy of src with the pre-2026-12-06 names; returns how many names changed."""
    tensors, meta, _ = read_safetensors(src)
    items = [(NEW.sub(r"\1\2\3.", k), v) for k, v in tensors.items()]
    write_safetensors(dst, items, meta)
    return sum(a != b for a, (b, _) in zip(tensors, items))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bcae, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    failures = 0

    def check(cond, what):
        nonlocal failures
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        failures += not cond

    def run(*args):
        r = subprocess.run([bcae] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode:
            print(f"  `bcae {' '.join(args[:2])} ...` exited {r.returncode}: {r.stderr.strip()[-400:]}")
        return r

    def path(name):
        return os.path.join(work, name)

    data = path("data")
    run("simulate", "--events", "1", "--seed", "4", "--out", data, "--test-fraction", "0", "-q")
    wedges = B.manifest(data, "train")[:2]

    print("== forward")
    torch.manual_seed(11)
    model = B.BCAE3D("bcae-ht")
    B.randomize_rezero(model, torch.Generator().manual_seed(12))
    B.save_model3d(path("new.safetensors"), model)
    n = to_old_names(path("new.safetensors"), path("old.safetensors"))
    check(n == 6, f"old-name copy: {n} of 6 output-layer names changed")
    for name in ("new", "old"):
        run("forward", "--model", path(f"{name}.safetensors"), "--out", path(f"fw_{name}"),
            "--threads", "2", *wedges)
    for k in ("code", "seg", "reg", "recon"):
        a, b = path(f"fw_new/{k}.npy"), path(f"fw_old/{k}.npy")
        check(os.path.exists(a) and os.path.exists(b) and filecmp.cmp(a, b, shallow=False),
              f"{k}.npy byte-identical")

    print("== train --init, --resume")
    common = ["train", "--data", data, "--arch", "bcae-ht", "--batch-size", "1",
              "--batches-per-epoch", "4", "--num-epochs", "1", "--validation-batches-per-epoch",
              "0", "--seed", "3", "--threads", "2", "-q"]
    for name in ("new", "old"):
        r = run(*common, "--init", path(f"{name}.safetensors"), "--max-steps", "2",
                "--out", path(f"init_{name}.safetensors"), "--log", path(f"init_{name}.csv"),
                "--checkpoint", path(f"init_{name}.ckpt"))
        check(r.returncode == 0, f"train --init {name}.safetensors")
    same = all(os.path.exists(path(f"init_new.{e}")) and
               filecmp.cmp(path(f"init_new.{e}"), path(f"init_old.{e}"), shallow=False)
               for e in ("safetensors", "csv", "ckpt"))
    check(same, "--init: weights, log and checkpoint byte-identical after 2 steps")
    n = to_old_names(path("init_new.ckpt"), path("old.ckpt"))
    check(n == 18, f"old-name checkpoint: {n} of 18 names changed (weights and two moments)")
    for name, ckpt in (("new", "init_new.ckpt"), ("old", "old.ckpt")):
        shutil.copy(path(ckpt), path(f"res_{name}.ckpt"))
        r = run(*common, "--resume", path(f"res_{name}.ckpt"), "--checkpoint",
                path(f"res_{name}.ckpt"), "--out", path(f"res_{name}.safetensors"),
                "--log", path(f"res_{name}.csv"))
        check(r.returncode == 0, f"train --resume {ckpt}")
    same = all(os.path.exists(path(f"res_new.{e}")) and
               filecmp.cmp(path(f"res_new.{e}"), path(f"res_old.{e}"), shallow=False)
               for e in ("safetensors", "csv", "ckpt"))
    check(same, "--resume: weights, log and checkpoint byte-identical after 2 more steps")

    print("== the original BCAE has no alias")
    orig = B.BCAE3D("bcae")
    B.save_model3d(path("orig.safetensors"), orig)
    tensors, meta, _ = read_safetensors(path("orig.safetensors"))
    items = [(k.replace("encoder.layers.encoder_output.", "encoder.encoder_output."), v)
             for k, v in tensors.items()]
    write_safetensors(path("orig_bad.safetensors"), items, meta)
    r = run("forward", "--model", path("orig_bad.safetensors"), "--out", path("fw_orig"),
            wedges[0])
    check(r.returncode != 0 and "encoder.layers.encoder_output.0.weight" in r.stderr,
          "a BCAE file without `layers.` in its output names is refused")

    print("model3d_old_names:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
