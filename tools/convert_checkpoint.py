#!/usr/bin/python3
"""Converts the BCAE-2D authors' TorchScript checkpoints into one bcae weights file.

    convert_checkpoint.py ENC_LAST.pth DEC_LAST.pth OUT.safetensors [--threshold H]
    convert_checkpoint.py CHECKPOINT_DIR OUT.safetensors [--threshold H]

The reference implementation saves the encoder and the decoder separately (enc_last.pth,
dec_last.pth, TorchScript archives; a torch.save'd state dict also loads). Their
state-dict keys are the names of SPEC section 3 without the `encoder.` / `decoder.`
prefixes: `init_conv.weight`, `layers.{j}.conv1.0.weight`, ...,
`decoder_clf.layers.{j}.rezero_alpha`, `decoder_reg.output_layer.bias`. This tool infers
BCAE-2D(m, n, d) from which layer indices hold parameters (a pooling or upsampling layer
takes an index but holds none), checks that every expected tensor is there with its shape
and nothing else is, and writes one safetensors file (docs/FORMATS.md, "Model files") with
the prefixed names as F32, in PyTorch's state-dict order (the order `bcae train` writes, so
the weights' fingerprint does not depend on which tool wrote the file), and the metadata
arch=bcae-2d, m, n, d, log=1, transform=1, clf_threshold.

Needs torch (Debian's python3-torch; run with /usr/bin/python3) and numpy.
"""

import argparse
import json
import os
import re
import struct
import sys

import numpy as np

CHANNELS, LAYERS = 32, 16  # SPEC 3: hidden width; wedge layers = input/output channels


class ConversionError(Exception):
    pass


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------

def load_state_dict(path):
    """name -> float32 numpy array from a TorchScript archive or a torch.save'd state dict."""
    import torch

    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        obj = torch.jit.load(path, map_location="cpu")
    except Exception as jit_error:
        # Not TorchScript: a torch.save'd state dict. weights_only refuses anything but
        # tensors and containers, so a hostile pickle cannot run code here.
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ConversionError(f"{path}: neither a TorchScript archive ({jit_error}) nor a "
                                  f"saved state dict ({e})") from None
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConversionError(f"{path}: holds {type(obj).__name__}, not a model or state dict")
    out = {}
    for k, v in obj.items():
        if not v.is_floating_point():
            raise ConversionError(f"{path}: tensor {k!r} is {v.dtype}, not floating point")
        out[k] = v.detach().to(torch.float32).cpu().contiguous().numpy()
    return out


# ----------------------------------------------------------------------------------------
# Structure
# ----------------------------------------------------------------------------------------

def residual_names(prefix, j):
    """A residual block's tensors in state-dict order (the block's own alpha first)."""
    base = f"{prefix}layers.{j}."
    return [(base + "rezero_alpha", (1,)),
            (base + "conv1.0.weight", (CHANNELS, CHANNELS, 3, 3)),
            (base + "conv1.0.bias", (CHANNELS,)),
            (base + "conv2.0.weight", (CHANNELS, CHANNELS, 3, 3)),
            (base + "conv2.0.bias", (CHANNELS,))]


def stack_names(prefix, blocks, samplings):
    """For block i < blocks: a sampling layer if i < samplings (an index, no tensors), then
    two residual blocks."""
    names, j = [], 0
    for i in range(blocks):
        if i < samplings:
            j += 1
        for _ in range(2):
            names += residual_names(prefix, j)
            j += 1
    return names


def encoder_names(m, d, prefix=""):
    return [(prefix + "init_conv.weight", (CHANNELS, LAYERS, 7, 7)),
            (prefix + "init_conv.bias", (CHANNELS,))] + stack_names(prefix, m, d)


def decoder_names(n, d, prefix=""):
    names = []
    for head in ("decoder_clf.", "decoder_reg."):
        names += stack_names(prefix + head, n, d)
        names += [(prefix + head + "output_layer.weight", (LAYERS, CHANNELS, 1, 1)),
                  (prefix + head + "output_layer.bias", (LAYERS,))]
    return names


def infer_stack(keys, prefix, what):
    """(blocks, samplings) of a layer stack from the indices j of `{prefix}layers.{j}.*`:
    the indices holding parameters are the residual blocks, the missing ones below the
    largest are the parameter-free sampling layers."""
    pat = re.compile(re.escape(prefix) + r"layers\.(\d+)\.")
    held = sorted({int(mt.group(1)) for k in keys if (mt := pat.match(k))})
    if not held:
        raise ConversionError(f"{what}: no '{prefix}layers.*' tensors: not a BCAE-2D")
    missing = sorted(set(range(held[-1] + 1)) - set(held))
    if len(held) % 2:
        raise ConversionError(f"{what}: {len(held)} residual blocks, expected an even number "
                              f"(two per block)")
    blocks, samplings = len(held) // 2, len(missing)
    # The layout must be exactly [sampling, res, res] x samplings then [res, res] x rest.
    want = [3 * i for i in range(samplings)]
    if missing != want:
        raise ConversionError(f"{what}: parameter-free layers at indices {missing}, expected "
                              f"{want} for {blocks} blocks with {samplings} samplings")
    return blocks, samplings


def check_tensors(sd, expected, what):
    """Every expected tensor present with its shape (a 0-d alpha is taken as (1,)), and
    nothing else. Returns the arrays in the expected order."""
    problems, out = [], []
    for name, shape in expected:
        if name not in sd:
            problems.append(f"missing {name} {list(shape)}")
            continue
        a = sd[name]
        if name.endswith("rezero_alpha") and a.shape == ():
            a = a.reshape(1)
        if tuple(a.shape) != shape:
            problems.append(f"{name} has shape {list(a.shape)}, expected {list(shape)}")
        out.append((name, a))
    extra = sorted(set(sd) - {n for n, _ in expected})
    problems += [f"unexpected tensor {k} {list(sd[k].shape)}" for k in extra]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... {len(problems) - 8} more"
                                           if len(problems) > 8 else "")
        raise ConversionError(f"{what}: {shown}")
    return out


def convert(enc_sd, dec_sd, enc_name="encoder", dec_name="decoder"):
    """(m, n, d, [(prefixed name, array)]) from the two state dicts."""
    m, d_enc = infer_stack(enc_sd.keys(), "", enc_name)
    n, d_clf = infer_stack(dec_sd.keys(), "decoder_clf.", dec_name)
    n_reg, d_reg = infer_stack(dec_sd.keys(), "decoder_reg.", dec_name)
    if (n_reg, d_reg) != (n, d_clf):
        raise ConversionError(f"{dec_name}: the heads differ: decoder_clf has {n} blocks and "
                              f"{d_clf} upsamplings, decoder_reg {n_reg} and {d_reg}")
    if d_clf != d_enc:
        raise ConversionError(f"{enc_name} downsamples {d_enc} times, {dec_name} upsamples "
                              f"{d_clf} times: not one model")
    if d_enc < 1:
        raise ConversionError(f"{enc_name}: no pooling layer: not a BCAE-2D")
    enc = check_tensors(enc_sd, encoder_names(m, d_enc), enc_name)
    dec = check_tensors(dec_sd, decoder_names(n, d_enc), dec_name)
    tensors = [("encoder." + k, a) for k, a in enc] + [("decoder." + k, a) for k, a in dec]
    for k, a in tensors:
        if not np.all(np.isfinite(a)):
            raise ConversionError(f"tensor {k} holds non-finite values")
    return m, n, d_enc, tensors


# ----------------------------------------------------------------------------------------
# Writing (the same layout as tests/torch_ref/safetensors_np.py and the C writer: tensors in
# order, contiguous offsets, the JSON header padded with spaces to a multiple of 8 bytes)
# ----------------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header, chunks, at = {"__metadata__": metadata}, [], 0
    for name, a in tensors:
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for c in chunks:
            fh.write(c)
    os.replace(tmp, path)  # never a half-written model under the final name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 usage="%(prog)s (ENC.pth DEC.pth | CHECKPOINT_DIR) "
                                       "OUT.safetensors [--threshold H]")
    ap.add_argument("inputs", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--threshold", type=float, default=0.5,
                    help="segmentation threshold h stored as clf_threshold (default 0.5)")
    a = ap.parse_args(argv)
    if len(a.inputs) == 2 and os.path.isdir(a.inputs[0]):
        enc_path = os.path.join(a.inputs[0], "enc_last.pth")
        dec_path = os.path.join(a.inputs[0], "dec_last.pth")
        out = a.inputs[1]
    elif len(a.inputs) == 3:
        enc_path, dec_path, out = a.inputs
    else:
        ap.error("give ENC.pth DEC.pth OUT.safetensors, or CHECKPOINT_DIR OUT.safetensors")
    if not 0 < a.threshold < 1:
        ap.error("--threshold must lie in (0, 1)")
    try:
        m, n, d, tensors = convert(load_state_dict(enc_path), load_state_dict(dec_path),
                                   enc_path, dec_path)
        meta = {"arch": "bcae-2d", "m": str(m), "n": str(n), "d": str(d), "log": "1",
                "transform": "1", "clf_threshold": f"{a.threshold:g}",
                "source": f"{os.path.basename(enc_path)} + {os.path.basename(dec_path)}"}
        write_safetensors(out, tensors, meta)
    except ConversionError as e:
        print(f"convert_checkpoint: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"convert_checkpoint: {e}", file=sys.stderr)
        return 1
    enc_params = sum(x.size for k, x in tensors if k.startswith("encoder."))
    print(f"{out}: BCAE-2D(m={m}, n={n}, d={d}), {len(tensors)} tensors, encoder "
          f"{enc_params} parameters, code (32, {192 >> d}, {256 >> d})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
