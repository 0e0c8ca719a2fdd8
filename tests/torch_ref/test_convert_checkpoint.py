#!/usr/bin/python3
"""tools/convert_checkpoint.py end to end (ctest convert_checkpoint).

    test_convert_checkpoint.py TEST_SAFETENSORS_BINARY BCAE_BINARY WORK_DIR

For BCAE-2D (4, 8, 3) and (2, 3, 2): builds our PyTorch model with random weights,
TorchScripts its encoder and decoder and saves them as enc_last.pth / dec_last.pth the way
the reference implementation does (state-dict keys without the encoder./decoder. prefixes),
converts, and checks the result with
  - our Python reader: names (prefixed, in state-dict order), shapes, values bit for bit,
    and the metadata (arch, m, n, d inferred from the key structure, log, transform,
    clf_threshold);
  - the C reader (test_safetensors dump): names, dtypes, shapes, SHA-256 of every tensor's
    data and the file's fingerprint;
  - the C model loader (`bcae forward` on a small wedge).
Then feeds it broken checkpoints (a tensor missing, one of the wrong shape, an extra one,
encoder and decoder of different depths, not a checkpoint at all), each of which must fail
with a message naming the problem.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONVERTER = os.path.join(ROOT, "tools", "convert_checkpoint.py")
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402
from safetensors_np import data_section, read_safetensors  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"  FAIL: {what}")
    return cond


def convert(*args):
    r = subprocess.run([sys.executable, CONVERTER, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def save_reference_checkpoint(model, folder):
    """What the reference implementation ships: TorchScript encoder and decoder."""
    os.makedirs(folder, exist_ok=True)
    torch.jit.script(model.encoder).save(os.path.join(folder, "enc_last.pth"))
    torch.jit.script(model.decoder).save(os.path.join(folder, "dec_last.pth"))


def check_good(m, n, d, test_st, bcae, work):
    print(f"BCAE-2D({m}, {n}, {d}):")
    torch.manual_seed(100 + m)
    model = B.BCAE2D(m, n, d)
    B.randomize_rezero(model, torch.Generator().manual_seed(m))
    folder = os.path.join(work, f"ckpt_{m}{n}{d}")
    save_reference_checkpoint(model, folder)
    out = os.path.join(work, f"model_{m}{n}{d}.safetensors")
    rc, so, se = convert(folder, out, "--threshold", "0.5")
    print(f"  {so or se}")
    if not check(rc == 0, f"conversion failed: {se}"):
        return

    # Python reader: names in state-dict order, shapes and values exact, metadata.
    want = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    tensors, meta, dtypes = read_safetensors(out)
    check(list(tensors) == list(want), "names or their order differ from the state dict")
    for k, v in want.items():
        if k in tensors:
            check(tensors[k].shape == v.shape and dtypes[k] == "F32",
                  f"{k}: {dtypes[k]}{tensors[k].shape}, expected F32{v.shape}")
            check(np.array_equal(tensors[k], v), f"{k}: values differ")
    for key, value in B.model_metadata(m, n, d).items():
        check(meta.get(key) == value, f"metadata {key} = {meta.get(key)!r}, expected {value!r}")

    # C reader: the same names, shapes and bytes, and the fingerprint.
    r = subprocess.run([test_st, "dump", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if not check(r.returncode == 0, f"C reader refused the file: {r.stderr.strip()}"):
        return
    dump = json.loads(r.stdout)
    check([t["name"] for t in dump["tensors"]] == list(want), "C reader: names differ")
    for t in dump["tensors"]:
        v = want.get(t["name"])
        if v is None:
            continue
        check(t["dtype"] == "F32" and t["shape"] == list(v.shape),
              f"C reader: {t['name']} is {t['dtype']}{t['shape']}")
        check(t["sha256"] == hashlib.sha256(v.astype("<f4").tobytes()).hexdigest(),
              f"C reader: {t['name']} data differ")
    with open(out, "rb") as fh:
        fingerprint = hashlib.sha256(data_section(fh.read())).hexdigest()
    check(dump["fingerprint"] == fingerprint, "C fingerprint is not the data's SHA-256")
    check(dump["metadata"] == meta, "C reader: metadata differ")

    # The C model loader takes it (a wedge with a few hits is enough).
    if bcae:
        wedge = np.zeros(B.WEDGE_SHAPE, dtype=np.uint16)
        wedge[10:20, 30:40, 3] = 200
        wpath = os.path.join(work, "wedge.npy")
        np.save(wpath, wedge)
        r = subprocess.run([bcae, "forward", "--model", out, "--out",
                            os.path.join(work, f"fwd_{m}{n}{d}"), "--threads", "2", wpath],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(r.returncode == 0, f"bcae forward refused the converted model: {r.stdout}")


def expect_failure(work, what, enc_sd, dec_sd, fragment):
    folder = os.path.join(work, "bad")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    enc, dec = os.path.join(folder, "enc.pth"), os.path.join(folder, "dec.pth")
    torch.save(enc_sd, enc)
    torch.save(dec_sd, dec)
    out = os.path.join(folder, "out.safetensors")
    rc, _, se = convert(enc, dec, out)
    ok = rc == 1 and fragment in se and not os.path.exists(out)
    check(ok, f"{what}: exit {rc}, message {se!r} (expected one with {fragment!r})")
    if ok:
        print(f"  {what}: {se}")


def check_bad(work):
    print("broken checkpoints:")
    model = B.BCAE2D(4, 8, 3)
    enc = dict(model.encoder.state_dict())
    dec = dict(model.decoder.state_dict())

    e = dict(enc)
    del e["layers.4.conv2.0.bias"]
    expect_failure(work, "missing tensor", e, dec, "missing layers.4.conv2.0.bias")
    e = dict(enc)
    e["init_conv.weight"] = torch.zeros(32, 16, 5, 5)
    expect_failure(work, "wrong shape", e, dec, "init_conv.weight has shape [32, 16, 5, 5]")
    e = dict(enc)
    e["output_layer.weight"] = torch.zeros(16, 32, 1, 1)
    expect_failure(work, "extra tensor", e, dec, "unexpected tensor output_layer.weight")
    other = B.BCAE2D(4, 8, 2)
    expect_failure(work, "depths differ", enc, dict(other.decoder.state_dict()),
                   "upsamples 2 times")
    d = {k: v for k, v in dec.items() if not k.startswith("decoder_reg.layers.10.")}
    expect_failure(work, "odd residual count", enc, d, "even number")
    e = dict(enc)
    e["init_conv.bias"] = torch.zeros(32, dtype=torch.int64)
    expect_failure(work, "integer tensor", e, dec, "not floating point")

    folder = os.path.join(work, "bad")
    junk = os.path.join(folder, "junk.pth")
    with open(junk, "wb") as fh:
        fh.write(b"not a checkpoint")
    rc, _, se = convert(junk, junk, os.path.join(folder, "out.safetensors"))
    check(rc == 1 and "neither a TorchScript archive" in se, f"junk input: {rc} {se!r}")
    rc, _, se = convert(os.path.join(folder, "none.pth"), junk, os.path.join(folder, "o"))
    check(rc == 1 and "no such file" in se, f"missing input: {rc} {se!r}")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    test_st = os.path.abspath(sys.argv[1])
    bcae = os.path.abspath(sys.argv[2]) if len(sys.argv) == 4 else None
    work = os.path.abspath(sys.argv[-1])
    torch.set_num_threads(2)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    check_good(4, 8, 3, test_st, bcae, work)
    check_good(2, 3, 2, test_st, bcae, work)
    check_bad(work)
    print("convert_checkpoint:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
