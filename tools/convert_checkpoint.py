#!/usr/bin/python3
"""Converts the BCAE authors' checkpoints into one bcae weights file.

    convert_checkpoint.py ENC_LAST.pth DEC_LAST.pth OUT.safetensors [--threshold H]
    convert_checkpoint.py CHECKPOINT_DIR OUT.safetensors [--threshold H]
    convert_checkpoint.py encoder_2000.pt decoder_2000.pt OUT.safetensors    (original BCAE)

3D models (docs/MODELS.md) are recognised by their keys: the original BCAE's release
(BNL-DAQ-LDRD/NeuralCompression, `checkpoints/encoder_2000.pt` and `decoder_2000.pt`: plain
state dicts, keys `layers.encoder_block_{i}.*`, `layers.encoder_output.0.*`,
`decoder_c.layers.*`, `decoder_r.layers.*`) becomes arch=bcae with log=0 (raw-ADC input,
transform 64 + 6 exp(r)); the BCAE++ / BCAE-HT of the second repository
(BNL-DAQ-LDRD/NeuralCompression_v2, enc_last.pth / dec_last.pth; keys
`layers.encoder_block_{i}.*`, `layers.encoder_output.0.*`, `decoder_clf.layers.*`,
`decoder_clf.layers.decoder_output.0.*`, `decoder_reg.*`: the output layers sit inside
`layers` as in the original) becomes arch=bcae++ or bcae-ht (by its encoder widths, or
--arch) with log=1. Both get `features` (the four encoder widths). Every tensor is checked
against the shapes SPEC section 3 gives for those widths, and written with the `encoder.` /
`decoder.` prefixes in state-dict order. A CHECKPOINT_DIR holding encoder_2000.pt and
decoder_2000.pt (and no enc_last.pth) is read as the original release.

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

# ----------------------------------------------------------------------------------------
# 3D models (SPEC section 3)
# ----------------------------------------------------------------------------------------

DECODER_FEATURES = (16, 8, 4, 2)
CODE_CHANNELS = 8
ORIGINAL_KERNELS = [(4, 3, 3), (4, 4, 3), (4, 4, 3), (4, 3, 3)]
NEW_KERNEL = (3, 4, 4)
HT_FEATURES, PP_FEATURES = (2, 4, 4, 8), (8, 16, 32, 32)


def block_names(prefix, cin, cout, kernel, transposed):
    """A 3D residual block's tensors in state-dict order."""
    strided = (cin, cout) + kernel if transposed else (cout, cin) + kernel
    return [(prefix + "rezero_alpha", (1,)),
            (prefix + "main_block.0.weight", strided), (prefix + "main_block.0.bias", (cout,)),
            (prefix + "main_block.3.weight", (cout, cout, 3, 3, 3)),
            (prefix + "main_block.3.bias", (cout,)),
            (prefix + "side_block.0.weight", strided), (prefix + "side_block.0.bias", (cout,))]


def names_3d(original, features):
    """(encoder names, decoder names) without the prefixes, for the given widths."""
    enc, cin = [], 1
    for i, f in enumerate(features):
        k = ORIGINAL_KERNELS[i] if original else NEW_KERNEL
        enc += block_names(f"layers.encoder_block_{i}.", cin, f, k, False)
        cin = f
    out = "layers.encoder_output.0."
    enc += [(out + "weight", (CODE_CHANNELS, cin, 3, 3, 3)), (out + "bias", (CODE_CHANNELS,))]
    dec = []
    for head in (("decoder_c.", "decoder_r.") if original else ("decoder_clf.", "decoder_reg.")):
        cin = CODE_CHANNELS
        for i, f in enumerate(DECODER_FEATURES):
            k = ORIGINAL_KERNELS[len(ORIGINAL_KERNELS) - 1 - i] if original else NEW_KERNEL
            dec += block_names(f"{head}layers.decoder_block_{i}.", cin, f, k, True)
            cin = f
        out = f"{head}layers.decoder_output.0."
        dec += [(out + "weight", (1, cin, 3, 3, 3)), (out + "bias", (1,))]
    return enc, dec


def is_3d(enc_sd):
    return any(k.startswith("layers.encoder_block_") for k in enc_sd)


def convert_3d(enc_sd, dec_sd, enc_name="encoder", dec_name="decoder", arch=None):
    """(arch, features, [(prefixed name, array)]) of a 3D model's two state dicts."""
    # Both forms name the output layers alike; the decoder heads tell them apart.
    original = any(k.startswith("decoder_c.") for k in dec_sd)
    features = []
    for i in range(4):
        w = enc_sd.get(f"layers.encoder_block_{i}.main_block.0.weight")
        if w is None or w.ndim != 5:
            raise ConversionError(f"{enc_name}: no 5D layers.encoder_block_{i}.main_block.0.weight:"
                                  f" not a 3D BCAE encoder")
        features.append(int(w.shape[0]))
    features = tuple(features)
    if original:
        if arch not in (None, "bcae"):
            raise ConversionError(f"{enc_name}: holds the original BCAE, not {arch}")
        arch = "bcae"
    elif arch is None:
        arch = "bcae-ht" if features == HT_FEATURES else "bcae++"
    elif arch not in ("bcae++", "bcae-ht"):
        raise ConversionError(f"{enc_name}: holds a BCAE++ / BCAE-HT, not {arch}")
    enc_names, dec_names = names_3d(original, features)
    enc = check_tensors(enc_sd, enc_names, enc_name)
    dec = check_tensors(dec_sd, dec_names, dec_name)
    tensors = [("encoder." + k, a) for k, a in enc] + [("decoder." + k, a) for k, a in dec]
    for k, a in tensors:
        if not np.all(np.isfinite(a)):
            raise ConversionError(f"tensor {k} holds non-finite values")
    return arch, features, tensors


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
    ap.add_argument("--arch", choices=("bcae++", "bcae-ht"), default=None,
                    help="name a BCAE++ / BCAE-HT checkpoint's architecture (default: from "
                         "its encoder widths)")
    a = ap.parse_args(argv)
    if len(a.inputs) == 2 and os.path.isdir(a.inputs[0]):
        enc_path = os.path.join(a.inputs[0], "enc_last.pth")
        dec_path = os.path.join(a.inputs[0], "dec_last.pth")
        if not os.path.exists(enc_path) and os.path.exists(
                os.path.join(a.inputs[0], "encoder_2000.pt")):
            enc_path = os.path.join(a.inputs[0], "encoder_2000.pt")
            dec_path = os.path.join(a.inputs[0], "decoder_2000.pt")
        out = a.inputs[1]
    elif len(a.inputs) == 3:
        enc_path, dec_path, out = a.inputs
    else:
        ap.error("give ENC.pth DEC.pth OUT.safetensors, or CHECKPOINT_DIR OUT.safetensors")
    if not 0 < a.threshold < 1:
        ap.error("--threshold must lie in (0, 1)")
    try:
        enc_sd, dec_sd = load_state_dict(enc_path), load_state_dict(dec_path)
        if is_3d(enc_sd):
            arch, features, tensors = convert_3d(enc_sd, dec_sd, enc_path, dec_path, a.arch)
            flag = "0" if arch == "bcae" else "1"
            meta = {"arch": arch, "features": ",".join(str(f) for f in features), "log": flag,
                    "transform": flag, "clf_threshold": f"{a.threshold:g}",
                    "source": f"{os.path.basename(enc_path)} + {os.path.basename(dec_path)}"}
            write_safetensors(out, tensors, meta)
            enc_params = sum(x.size for k, x in tensors if k.startswith("encoder."))
            print(f"{out}: {arch} (features {','.join(str(f) for f in features)}, "
                  f"log {flag}), {len(tensors)} tensors, encoder {enc_params} parameters")
            return 0
        m, n, d, tensors = convert(enc_sd, dec_sd, enc_path, dec_path)
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
