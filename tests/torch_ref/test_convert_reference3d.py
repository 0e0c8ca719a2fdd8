#!/usr/bin/python3
"""BCAE++ / BCAE-HT checkpoints as the authors' code writes them (ctest convert_checkpoint_reference3d).

    test_convert_reference3d.py BCAE_BINARY WORK_DIR

The networks below are nested as in the authors' second repository
(BNL-DAQ-LDRD/NeuralCompression_v2, neuralcompress_v2/models/network3d.py), so that
`state_dict()` gives that code's names by construction; they are written here from its
structure, not copied. What matters is the nesting:
  Encoder: `layers` = Sequential of `encoder_block_{i}` (i = 0..3) and then `encoder_output`;
  BiDecoder: `decoder_clf`, `decoder_reg`, each with `layers` = Sequential of
    `decoder_block_{i}` and then `decoder_output`;
  a block: `main_block` = Sequential(strided conv, norm, activation, Conv3d k3 p1),
    `side_block` = Sequential(strided conv, norm, activation), its own `norm` and `activ`
    after the sum, and the parameter `rezero_alpha` (norm is Identity for these models);
  an output layer: Sequential(Conv3d k3 p1, norm, activation): Identity, Identity in the
    encoder; Identity, then Sigmoid (clf) or Identity (reg) in the decoders.
The regression transform 6 + 3 exp(r), the z padding 249 -> 256 and the crop are the
training script's, outside the modules.

For BCAE++ and BCAE-HT, random weights (every rezero_alpha random non-zero):
  1. saved as that training saves them by default: traced with torch.jit.trace and written
     with torch.jit.save as enc_last.pth and dec_last.pth in one folder; also as plain
     torch.save'd state dicts (its jit=False form);
  2. tools/convert_checkpoint.py on the folder: arch and features right, the tensors equal
     the modules' state dicts under `encoder.` / `decoder.`, in their order; the state-dict
     form converts to the same bytes;
  3. `bcae forward` against this PyTorch forward in float64: parity_forward3d.py's checks
     (code, seg, reg, recon <= 1e-4 relative; mask flips only next to the threshold), with
     the classifier's output layer scaled so that the reference keeps 5-95% of the voxels.
Exits 0 when everything holds.
"""

import copy
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bcae_torch as B  # noqa: E402
import parity_forward3d as P  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402

CONVERTER = os.path.join(HERE, "..", "..", "tools", "convert_checkpoint.py")
SLOPE = 0.2
STRIDED = dict(kernel_size=(3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1))
DECODER_WIDTHS = (16, 8, 4, 2)
CODE_CHANNELS = 8
Z_PAD = 256 - 249
FEATURES = {"bcae++": (8, 16, 32, 32), "bcae-ht": (2, 4, 4, 8)}


def conv_norm_act(conv, act):
    """[0] the convolution, [1] the norm (none: Identity), [2] the activation."""
    return [conv, nn.Identity(), act]


class RefBlock(nn.Module):
    def __init__(self, cin, cout, transposed):
        super().__init__()
        conv = nn.ConvTranspose3d if transposed else nn.Conv3d
        self.main_block = nn.Sequential(*conv_norm_act(conv(cin, cout, **STRIDED),
                                                       nn.LeakyReLU(SLOPE)),
                                        nn.Conv3d(cout, cout, 3, padding=1))
        self.side_block = nn.Sequential(*conv_norm_act(conv(cin, cout, **STRIDED),
                                                       nn.LeakyReLU(SLOPE)))
        self.norm = nn.Identity()
        self.activ = nn.LeakyReLU(SLOPE)
        self.rezero_alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.activ(self.norm(self.rezero_alpha * self.main_block(x) + self.side_block(x)))


class RefEncoder(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.layers = nn.Sequential()
        cin = 1
        for i, f in enumerate(features):
            self.layers.add_module(f"encoder_block_{i}", RefBlock(cin, f, False))
            cin = f
        self.layers.add_module("encoder_output", nn.Sequential(*conv_norm_act(
            nn.Conv3d(cin, CODE_CHANNELS, 3, padding=1), nn.Identity())))

    def forward(self, x):
        return self.layers(x)


class RefDecoderHead(nn.Module):
    def __init__(self, out_act):
        super().__init__()
        self.layers = nn.Sequential()
        cin = CODE_CHANNELS
        for i, f in enumerate(DECODER_WIDTHS):
            self.layers.add_module(f"decoder_block_{i}", RefBlock(cin, f, True))
            cin = f
        self.layers.add_module("decoder_output", nn.Sequential(*conv_norm_act(
            nn.Conv3d(cin, 1, 3, padding=1), out_act)))

    def forward(self, code):
        return self.layers(code)


class RefBiDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder_clf = RefDecoderHead(nn.Sigmoid())
        self.decoder_reg = RefDecoderHead(nn.Identity())

    def forward(self, code):
        return self.decoder_clf(code), self.decoder_reg(code)


def reference_input(adc, dtype):
    """A wedge (azimuth, z, layer) -> (1, 1, layer, azimuth, z + 7): log2(ADC + 1), padded."""
    x = torch.from_numpy(np.log2(adc.astype(np.float64) + 1.0)).permute(2, 0, 1)
    return F.pad(x[None, None], (0, Z_PAD)).to(dtype)


@torch.no_grad()
def reference_outputs(encoder, decoder, wedges):
    enc, dec = copy.deepcopy(encoder).double(), copy.deepcopy(decoder).double()
    out = {"code": [], "seg": [], "reg": [], "recon": []}
    for w in wedges:
        code = enc(reference_input(B.load_wedge(w), torch.float64))
        seg, r = dec(code)
        seg = seg[..., :-Z_PAD]
        reg = 6.0 + 3.0 * torch.exp(r[..., :-Z_PAD])
        out["code"].append(code)
        out["seg"].append(seg)
        out["reg"].append(reg)
        out["recon"].append(reg * (seg > 0.5).to(reg.dtype))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def convert(*args):
    r = subprocess.run([sys.executable, CONVERTER] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    print("  convert:", r.stdout.strip())
    return r.returncode


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

    data = os.path.join(work, "data")
    P.run([bcae, "simulate", "--events", "1", "--seed", "6", "--out", data, "-q"])
    wedges = B.manifest(data, "train")
    wedges = [wedges[1], wedges[len(wedges) // 2]]

    for n, (arch, features) in enumerate(FEATURES.items()):
        print(f"== {arch}")
        torch.manual_seed(30 + n)
        encoder, decoder = RefEncoder(features).eval(), RefBiDecoder().eval()
        for m in (encoder, decoder):
            B.randomize_rezero(m, torch.Generator().manual_seed(40 + n))
        with torch.no_grad():
            # Random decoders give logits within ~0.01 of each other: scale the classifier's
            # output layer to spread them to a standard deviation of ~1 around 0, so that the
            # mask keeps about half the voxels and few sit next to the threshold.
            out = decoder.decoder_clf.layers.decoder_output[0]
            seg, _ = decoder(encoder(reference_input(B.load_wedge(wedges[0]), torch.float32)))
            logit = torch.logit(seg.double()) - out.bias.double()
            out.weight.div_(float(logit.std()))
            out.bias.copy_(-(logit / logit.std()).median().float().reshape(1))
        names = list(encoder.state_dict()) + list(decoder.state_dict())
        print(f"  {len(names)} tensors, e.g. {names[28]}, {names[59]}, {names[-1]}")
        # 1. The training script's default save: traced modules, enc_last.pth / dec_last.pth.
        ckpt = os.path.join(work, f"{arch}_checkpoints")
        os.makedirs(ckpt)
        with torch.no_grad():
            dummy = reference_input(B.load_wedge(wedges[0]), torch.float32)
            traced_enc = torch.jit.trace(encoder, dummy)
            traced_dec = torch.jit.trace(decoder, encoder(dummy))
        torch.jit.save(traced_enc, os.path.join(ckpt, "enc_last.pth"))
        torch.jit.save(traced_dec, os.path.join(ckpt, "dec_last.pth"))
        sd_dir = os.path.join(work, f"{arch}_state_dicts")
        os.makedirs(sd_dir)
        torch.save(encoder.state_dict(), os.path.join(sd_dir, "enc_last.pth"))
        torch.save(decoder.state_dict(), os.path.join(sd_dir, "dec_last.pth"))
        # 2. Convert both forms.
        out = os.path.join(work, f"{arch}.safetensors")
        check(convert(ckpt, out) == 0, "the traced checkpoint converts")
        out_sd = os.path.join(work, f"{arch}_sd.safetensors")
        check(convert(sd_dir, out_sd) == 0, "the state-dict form converts")
        if not os.path.exists(out):
            continue
        tensors, meta, _ = read_safetensors(out)
        want = [("encoder." + k, v) for k, v in encoder.state_dict().items()] + \
               [("decoder." + k, v) for k, v in decoder.state_dict().items()]
        check(list(tensors) == [k for k, _ in want] and
              all(np.array_equal(tensors[k], v.numpy()) for k, v in want),
              "tensors = the modules' state dicts with encoder./decoder., in order")
        check(meta.get("arch") == arch and meta.get("features") == ",".join(map(str, features))
              and meta.get("log") == "1", f"metadata {meta}")
        if os.path.exists(out_sd):
            a, b = read_safetensors(out), read_safetensors(out_sd)
            check(list(a[0]) == list(b[0]) and
                  all(np.array_equal(a[0][k], b[0][k]) for k in a[0]),
                  "both forms give the same tensors")
        # 3. bcae forward against the PyTorch forward.
        ref = reference_outputs(encoder, decoder, wedges)
        kept = float(np.mean(ref["recon"] > 0))
        check(0.05 < kept < 0.95, f"the reference keeps {kept:.1%} of the voxels")
        c_dir = os.path.join(work, f"c_{arch}")
        P.run([bcae, "forward", "--model", out, "--out", c_dir, "--threads", "2"] + wedges)
        failures += P.check_outputs(arch, ref, P.load_outputs(c_dir))

    print("convert_checkpoint_reference3d:", "PASS" if failures == 0 else f"FAIL ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
