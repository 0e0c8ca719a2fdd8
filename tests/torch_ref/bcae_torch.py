"""Our own PyTorch definition of BCAE-2D, the reference the C engine is checked against.

Written from /work/shared/SPEC.md (sections 1-4), not copied from the authors' code:
  - data preparation (SPEC 1): x = log2(adc + 1), (azimuth, z, layer) -> (layer, azimuth, z),
    z zero-padded 249 -> 256; losses and outputs are cropped back to 249;
  - BCAE-2D(m, n, d) (SPEC 3), with module names that give the state-dict names of the
    reference implementation (encoder.init_conv.weight, encoder.layers.{j}.conv1.0.weight,
    decoder.decoder_clf.output_layer.bias, ...);
  - reconstruction (SPEC 2): seg = sigmoid, reg = 6 + 3 exp(r), recon = reg * 1[seg > 0.5];
  - training (SPEC 4): focal loss (log2, gamma 2, eps 1e-8), masked L1 with a hard mask, the
    per-batch dynamic coefficient, AdamW and the step learning-rate schedule;
  - model files: safetensors (pure Python, safetensors_np.py) with the metadata the C side
    reads (arch, m, n, d, log, transform, clf_threshold).

Only numpy and torch (Debian's python3-torch 1.13) are needed: run with /usr/bin/python3.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safetensors_np import read_safetensors, write_safetensors

# SPEC 1: wedge and model layouts.
WEDGE_SHAPE = (192, 249, 16)  # (azimuth, z, layer) in the files
LAYERS, AZIMUTH, Z_VALID, Z_PADDED = 16, 192, 249, 256
# SPEC 3: every hidden layer is 32 channels wide; LeakyReLU slope 0.2 everywhere.
CHANNELS = 32
SLOPE = 0.2
# SPEC 2: regression transform in log mode, and the segmentation threshold.
REG_SHIFT, REG_SCALE = 6.0, 3.0
THRESHOLD = 0.5
# SPEC 4: loss and optimiser constants.
FOCAL_GAMMA, FOCAL_EPS = 2.0, 1e-8
COEF0 = 2000.0
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """32 -> 32: y = LeakyReLU(alpha * conv2(LeakyReLU(conv1(x))) + x), ReZero alpha = 0.

    conv1 and conv2 are Sequentials so that their parameters are named conv1.0.* and
    conv2.0.*, as in the reference's state dicts.
    """

    # TorchScript (tools/convert_checkpoint.py's test scripts these modules) reads plain
    # numbers only from attributes it is told are constant, not from module globals.
    __constants__ = ["slope"]

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.slope = SLOPE
        self.conv1 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.LeakyReLU(SLOPE))
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1))
        self.rezero_alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.leaky_relu(self.rezero_alpha * self.conv2(self.conv1(x)) + x, self.slope)


class Encoder(nn.Module):
    """init_conv (16 -> 32, k7, p3, no activation), then for block i < m: an AvgPool2d(2)
    if i < d, and two residual blocks. No output layer: the code is the 32-channel map."""

    def __init__(self, m: int, d: int):
        super().__init__()
        self.init_conv = nn.Conv2d(LAYERS, CHANNELS, 7, padding=3)
        layers = []
        for i in range(m):
            if i < d:
                layers.append(nn.AvgPool2d(2, 2))  # takes an index j, has no parameters
            layers += [ResidualBlock(), ResidualBlock()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(self.init_conv(x))


class DecoderHead(nn.Module):
    """For block i < n: a nearest Upsample x2 if i < d, and two residual blocks; then
    output_layer (32 -> 16, k1). Returns the raw output (logits or r)."""

    def __init__(self, n: int, d: int):
        super().__init__()
        layers = []
        for i in range(n):
            if i < d:
                layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            layers += [ResidualBlock(), ResidualBlock()]
        self.layers = nn.Sequential(*layers)
        self.output_layer = nn.Conv2d(CHANNELS, LAYERS, 1)

    def forward(self, code):
        return self.output_layer(self.layers(code))


class Decoder(nn.Module):
    """The two heads; forward returns (seg = sigmoid(clf), reg = 6 + 3 exp(r))."""

    __constants__ = ["shift", "scale"]

    def __init__(self, n: int, d: int):
        super().__init__()
        self.shift, self.scale = REG_SHIFT, REG_SCALE
        self.decoder_clf = DecoderHead(n, d)
        self.decoder_reg = DecoderHead(n, d)

    def forward(self, code):
        seg = torch.sigmoid(self.decoder_clf(code))
        reg = self.shift + self.scale * torch.exp(self.decoder_reg(code))
        return seg, reg


class BCAE2D(nn.Module):
    def __init__(self, m: int = 4, n: int = 8, d: int = 3):
        super().__init__()
        if not (1 <= d <= m and d <= n):
            raise ValueError(f"BCAE-2D needs 1 <= d <= min(m, n), got m={m} n={n} d={d}")
        self.m, self.n, self.d = m, n, d
        self.encoder = Encoder(m, d)
        self.decoder = Decoder(n, d)

    def forward(self, x):
        """x (N, 16, 192, 256) -> code (N, 32, 192/2^d, 256/2^d), seg, reg (N, 16, 192, 256)."""
        code = self.encoder(x)
        seg, reg = self.decoder(code)
        return code, seg, reg


def randomize_rezero(model, generator):
    """Every rezero_alpha to a random non-zero value, |alpha| ~ U(0.2, 1) with a random sign:
    with the default alpha = 0 every residual branch would be invisible to a test."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("rezero_alpha"):
                mag = 0.2 + 0.8 * torch.rand(p.shape, generator=generator, dtype=torch.float64)
                sign = torch.where(torch.rand(p.shape, generator=generator) < 0.5, -1.0, 1.0)
                p.copy_((mag * sign).to(p.dtype))


def reconstruct(seg, reg, threshold=THRESHOLD):
    """SPEC 2: v~ = T(r) * 1[s > h]."""
    return reg * (seg > threshold).to(reg.dtype)


def crop(t):
    """The model's padded z (256) back to the wedge's 249."""
    return t[..., :Z_VALID]


# --------------------------------------------------------------------------------------
# Data (SPEC 1)
# --------------------------------------------------------------------------------------

def load_wedge(path):
    """A wedge file as uint16 (192, 249, 16); any integer or float dtype, checked."""
    a = np.load(path)
    if a.shape != WEDGE_SHAPE:
        raise ValueError(f"{path}: shape {a.shape}, expected {WEDGE_SHAPE}")
    if not np.all((a >= 0) & (a <= 1023) & (a == np.round(a))):
        raise ValueError(f"{path}: values must be integers in [0, 1023]")
    return a.astype(np.uint16)


def wedge_to_input(adc, dtype=torch.float32):
    """(192, 249, 16) ADC -> (16, 192, 256) model input: log2(adc + 1), z zero-padded."""
    x = np.log2(adc.astype(np.float64) + 1.0).astype(np.float32)  # correctly rounded floats
    x = np.transpose(x, (2, 0, 1))
    x = np.pad(x, ((0, 0), (0, 0), (0, Z_PADDED - Z_VALID)))
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)


def dataset_root(data_dir):
    """The folder holding train.txt/test.txt: DIR itself or DIR/outer (SPEC 1)."""
    for root in (data_dir, os.path.join(data_dir, "outer")):
        if os.path.isfile(os.path.join(root, "train.txt")):
            return root
    raise FileNotFoundError(f"{data_dir}: no train.txt here nor in outer/")


def manifest(data_dir, split="train"):
    """Absolute paths of a split's wedges, in manifest order."""
    root = dataset_root(data_dir)
    with open(os.path.join(root, f"{split}.txt")) as fh:
        return [os.path.join(root, line.strip()) for line in fh if line.strip()]


# --------------------------------------------------------------------------------------
# Training (SPEC 4)
# --------------------------------------------------------------------------------------

def focal_loss(seg, label, gamma=FOCAL_GAMMA, eps=FOCAL_EPS):
    """-mean(l (1-p+eps)^g log2(p+eps) + (1-l) (p+eps)^g log2(1-p+eps)), log base 2."""
    pos = label * (1 - seg + eps) ** gamma * torch.log2(seg + eps)
    neg = (1 - label) * (seg + eps) ** gamma * torch.log2(1 - seg + eps)
    return -(pos + neg).mean()


def bcae_losses(seg, reg, x, threshold=THRESHOLD):
    """(L_seg, L_reg) on the cropped volume. The mask 1[seg > h] is a constant: no gradient
    flows through it, only through reg (and through seg in the focal loss)."""
    seg, reg, x = crop(seg), crop(reg), crop(x)
    label = (x > 0).to(seg.dtype)
    l_seg = focal_loss(seg, label)
    mask = (seg.detach() > threshold).to(reg.dtype)
    l_reg = (reg * mask - x).abs().mean()
    return l_seg, l_reg


class DynamicCoefficient:
    """c <- (0.5 c + L_reg / L_seg) / 1.5 every batch, before the total is formed; c0 = 2000,
    back to c0 when L_seg is not finite."""

    def __init__(self, c0=COEF0):
        self.c0 = c0
        self.value = c0

    def update(self, l_reg, l_seg):
        if not math.isfinite(l_seg):
            self.value = self.c0
        else:
            ratio = l_reg / l_seg if l_seg != 0 else math.inf
            self.value = (0.5 * self.value + ratio) / 1.5
        return self.value


def make_optimizer(model, lr=ADAMW["lr"]):
    """AdamW on all parameters: betas (0.9, 0.999), eps 1e-8, weight decay 0.01."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=ADAMW["betas"],
                             eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])


def make_scheduler(optimizer, epochs, warmup, step, gamma=0.95):
    """Constant for `warmup` epochs, then x gamma every `step` epochs: MultiStepLR with
    milestones range(warmup, epochs, step), stepped once per epoch."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(range(warmup, epochs, step)), gamma=gamma)


# --------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------

def model_metadata(m, n, d, threshold=THRESHOLD):
    """The __metadata__ of a BCAE-2D weights file (docs/FORMATS.md)."""
    return {"arch": "bcae-2d", "m": str(m), "n": str(n), "d": str(d), "log": "1",
            "transform": "1", "clf_threshold": f"{threshold:g}"}


def save_model(path, model, extra_metadata=None):
    """F32 tensors in state-dict order, with the metadata."""
    meta = model_metadata(model.m, model.n, model.d)
    meta.update(extra_metadata or {})
    tensors = [(k, v.detach().to(torch.float32).cpu().numpy())
               for k, v in model.state_dict().items()]
    write_safetensors(path, tensors, meta)


def load_model(path):
    """A BCAE2D from a weights file; every tensor must be there with its shape."""
    tensors, meta, dtypes = read_safetensors(path)
    if meta.get("arch") != "bcae-2d":
        raise ValueError(f"{path}: arch {meta.get('arch')!r}, expected 'bcae-2d'")
    model = BCAE2D(int(meta["m"]), int(meta["n"]), int(meta["d"]))
    want = model.state_dict()
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    if missing or extra:
        raise ValueError(f"{path}: missing tensors {missing[:5]}, unexpected {extra[:5]}")
    state = {}
    for k, v in want.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or dtypes[k] != "F32":
            raise ValueError(f"{path}: tensor {k!r} is {dtypes[k]}{list(tensors[k].shape)}, "
                             f"expected F32{list(v.shape)}")
        state[k] = torch.from_numpy(tensors[k].copy())
    model.load_state_dict(state)
    return model


def compare(name, ref, got):
    """Relative difference max|a - b| / max|ref| of two arrays, plus the element-wise worst
    case (largest |a - b|, where, and its own relative size). Returns a dict."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"{name}: shape {got.shape}, expected {ref.shape}")
    diff = np.abs(ref - got)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    worst = int(np.argmax(diff)) if diff.size else 0
    where = np.unravel_index(worst, ref.shape) if diff.size else ()
    max_diff = float(diff.flat[worst]) if diff.size else 0.0
    ref_at = float(ref.flat[worst]) if diff.size else 0.0
    return {
        "name": name,
        "rel": max_diff / scale if scale > 0 else max_diff,
        "max_abs": max_diff,
        "scale": scale,
        "worst_index": tuple(int(i) for i in where),
        "worst_ref": ref_at,
        "worst_got": float(got.flat[worst]) if diff.size else 0.0,
        "worst_elem_rel": (max_diff / abs(ref_at) if ref_at != 0
                           else (math.inf if max_diff > 0 else 0.0)),
    }


# --------------------------------------------------------------------------------------
# The 3D models (SPEC section 3): BCAE++, BCAE-HT and the original BCAE
# --------------------------------------------------------------------------------------

ARCH_FEATURES = {"bcae++": (8, 16, 32, 32), "bcae-ht": (2, 4, 4, 8), "bcae": (8, 16, 32, 32)}
DECODER_FEATURES = (16, 8, 4, 2)
CODE_CHANNELS = 8
# The original BCAE's (kernel, padding, stride) per encoder block, (azimuth, z, layer) order;
# its decoders use the list mirrored.
ORIGINAL_BLOCKS = [((4, 3, 3), (1, 0, 1), (2, 2, 1)), ((4, 4, 3), (1, 1, 1), (2, 2, 1)),
                   ((4, 4, 3), (1, 1, 1), (2, 2, 1)), ((4, 3, 3), (1, 0, 1), (2, 2, 1))]
NORM_EPS = 1e-5
RAW_SHIFT, RAW_SCALE = 64.0, 6.0  # regression transform for raw-ADC models


class Block3D(nn.Module):
    """y = [norm](LeakyReLU(alpha * main(x) + side(x))), alpha = rezero_alpha (init 0).

    main_block: [0] strided conv, then (BCAE++/HT) [1] identity, [2] LeakyReLU or (BCAE)
    [1] LeakyReLU, [2] InstanceNorm3d; [3] Conv3d(f -> f, k3, p1). side_block: [0] strided
    conv, [1]/[2] as main. Transposed blocks use ConvTranspose3d for the strided convs.
    """

    def __init__(self, cin, cout, kernel, stride, padding, transposed, norm):
        super().__init__()
        conv = nn.ConvTranspose3d if transposed else nn.Conv3d
        self.norm = norm

        def mid():
            if norm:
                return [nn.LeakyReLU(SLOPE), nn.InstanceNorm3d(cout, eps=NORM_EPS)]
            return [nn.Identity(), nn.LeakyReLU(SLOPE)]

        self.main_block = nn.Sequential(conv(cin, cout, kernel, stride, padding), *mid(),
                                        nn.Conv3d(cout, cout, 3, padding=1))
        self.side_block = nn.Sequential(conv(cin, cout, kernel, stride, padding), *mid())
        self.rezero_alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        y = F.leaky_relu(self.rezero_alpha * self.main_block(x) + self.side_block(x), SLOPE)
        return F.instance_norm(y, eps=NORM_EPS) if self.norm else y


def block_geometry(arch, i, transposed):
    if arch == "bcae":
        k, p, s = ORIGINAL_BLOCKS[len(ORIGINAL_BLOCKS) - 1 - i if transposed else i]
        return k, s, p
    return (3, 4, 4), (1, 2, 2), (1, 1, 1)


class Encoder3D(nn.Module):
    def __init__(self, arch, features):
        super().__init__()
        orig = arch == "bcae"
        self.layers = nn.Sequential()
        cin = 1
        for i, f in enumerate(features):
            k, s, p = block_geometry(arch, i, False)
            self.layers.add_module(f"encoder_block_{i}", Block3D(cin, f, k, s, p, False, orig))
            cin = f
        # The output layer sits under `layers` in every 3D model (the reference's names);
        # the original BCAE's has LeakyReLU and InstanceNorm3d after the convolution.
        out = [nn.Conv3d(cin, CODE_CHANNELS, 3, padding=1)]
        if orig:
            out += [nn.LeakyReLU(SLOPE), nn.InstanceNorm3d(CODE_CHANNELS, eps=NORM_EPS)]
        self.layers.add_module("encoder_output", nn.Sequential(*out))

    def forward(self, x):
        return self.layers(x)


class DecoderHead3D(nn.Module):
    """Returns the raw output (logits or r); the head activation is the caller's."""

    def __init__(self, arch):
        super().__init__()
        orig = arch == "bcae"
        self.layers = nn.Sequential()
        cin = CODE_CHANNELS
        for i, f in enumerate(DECODER_FEATURES):
            k, s, p = block_geometry(arch, i, True)
            self.layers.add_module(f"decoder_block_{i}", Block3D(cin, f, k, s, p, True, orig))
            cin = f
        self.layers.add_module("decoder_output", nn.Sequential(nn.Conv3d(cin, 1, 3, padding=1)))

    def forward(self, code):
        return self.layers(code)


class Decoder3D(nn.Module):
    def __init__(self, arch, shift, scale):
        super().__init__()
        self.shift, self.scale = shift, scale
        self.clf_name, self.reg_name = (("decoder_c", "decoder_r") if arch == "bcae"
                                        else ("decoder_clf", "decoder_reg"))
        self.add_module(self.clf_name, DecoderHead3D(arch))
        self.add_module(self.reg_name, DecoderHead3D(arch))

    def forward(self, code):
        seg = torch.sigmoid(getattr(self, self.clf_name)(code))
        reg = self.shift + self.scale * torch.exp(getattr(self, self.reg_name)(code))
        return seg, reg


class BCAE3D(nn.Module):
    """arch 'bcae++' / 'bcae-ht' (input (N, 1, 16, 192, 256), log2(ADC+1)) or 'bcae' (input
    (N, 1, 192, 249, 16), raw ADC as float). log overrides the input mode."""

    def __init__(self, arch="bcae++", features=None, log=None):
        super().__init__()
        if arch not in ARCH_FEATURES:
            raise ValueError(f"unknown 3D architecture {arch!r}")
        self.arch = arch
        self.features = tuple(features or ARCH_FEATURES[arch])
        self.log = (arch != "bcae") if log is None else bool(log)
        shift, scale = (REG_SHIFT, REG_SCALE) if self.log else (RAW_SHIFT, RAW_SCALE)
        self.encoder = Encoder3D(arch, self.features)
        self.decoder = Decoder3D(arch, shift, scale)

    def forward(self, x):
        code = self.encoder(x)
        seg, reg = self.decoder(code)
        return code, seg, reg

    def wedge_input(self, adc, dtype=torch.float32):
        """(192, 249, 16) ADC -> (1, D, H, W) model input."""
        if self.arch == "bcae":
            x = adc.astype(np.float64)
            if self.log:
                x = np.log2(x + 1.0)
            return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))).to(dtype)[None]
        if self.log:
            return wedge_to_input(adc, dtype)[None]
        x = np.transpose(adc.astype(np.float32), (2, 0, 1))
        x = np.pad(x, ((0, 0), (0, 0), (0, Z_PADDED - Z_VALID)))
        return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)[None]

    def metadata(self, threshold=THRESHOLD):
        flag = "1" if self.log else "0"
        return {"arch": self.arch, "features": ",".join(str(f) for f in self.features),
                "log": flag, "transform": flag, "clf_threshold": f"{threshold:g}"}


def model_input(model, adc, dtype=torch.float32):
    """The input tensor of one wedge for any model (2D or 3D)."""
    if isinstance(model, BCAE3D):
        return model.wedge_input(adc, dtype)
    return wedge_to_input(adc, dtype)


def clone_model(model, dtype):
    """A copy of any model in another dtype."""
    if isinstance(model, BCAE3D):
        other = BCAE3D(model.arch, model.features, model.log)
    else:
        other = BCAE2D(model.m, model.n, model.d)
    other.load_state_dict({k: v.to(dtype) for k, v in model.state_dict().items()})
    return other.to(dtype).eval()


def save_model3d(path, model, extra_metadata=None):
    meta = model.metadata()
    meta.update(extra_metadata or {})
    tensors = [(k, v.detach().to(torch.float32).cpu().numpy())
               for k, v in model.state_dict().items()]
    write_safetensors(path, tensors, meta)


def load_any_model(path):
    """A BCAE2D or BCAE3D from a weights file, every tensor checked."""
    tensors, meta, dtypes = read_safetensors(path)
    arch = meta.get("arch")
    if arch == "bcae-2d":
        return load_model(path)
    if arch not in ARCH_FEATURES:
        raise ValueError(f"{path}: arch {arch!r}")
    feats = tuple(int(v) for v in meta["features"].split(",")) if "features" in meta else None
    model = BCAE3D(arch, feats, int(meta.get("log", "1" if arch != "bcae" else "0")))
    want = model.state_dict()
    if set(want) != set(tensors):
        raise ValueError(f"{path}: tensor names differ: missing {sorted(set(want) - set(tensors))[:5]}, "
                         f"unexpected {sorted(set(tensors) - set(want))[:5]}")
    model.load_state_dict({k: torch.from_numpy(tensors[k].copy()) for k in want})
    return model
