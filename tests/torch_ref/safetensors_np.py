"""safetensors in pure Python (json + struct + numpy), for the reference scripts.

The `safetensors` package is not installed (and none can be), so the PyTorch
reference reads and writes the format itself. Written from the format's
description (docs/FORMATS.md, "Model files (safetensors)"):

    u64 little-endian N | N bytes of JSON header | data buffer

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
end]} (offsets relative to the data buffer) plus an optional "__metadata__"
object of strings. Data are little-endian, C order. The writer lays the file out
as the reference implementation does: tensors in the order given with contiguous
offsets, the header padded with spaces to a multiple of 8 bytes.

bfloat16 has no NumPy dtype: BF16 tensors are read as their uint16 bit patterns
(see `bf16_to_f32`), and written from uint16 bit patterns with dtype="BF16".
"""

import json
import os
import struct

import numpy as np

# safetensors dtype -> NumPy little-endian dtype.
DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2",
    "U32": "<u4", "I32": "<i4", "U64": "<u8", "I64": "<i8",
    "F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8",
}
# NumPy kind+itemsize -> safetensors dtype (BF16 only when asked for).
_FROM_NUMPY = {
    ("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("u", 2): "U16", ("i", 2): "I16",
    ("u", 4): "U32", ("i", 4): "I32", ("u", 8): "U64", ("i", 8): "I64",
    ("f", 2): "F16", ("f", 4): "F32", ("f", 8): "F64",
}
MAX_HEADER = 100 << 20


class SafetensorsError(ValueError):
    """A file that is not valid safetensors; the message names the file and tensor."""


def bf16_to_f32(bits):
    """uint16 bfloat16 bit patterns -> float32 (bfloat16 is float32's top half)."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def _no_duplicate_keys(pairs):
    # json.loads keeps the last of repeated keys silently; the format forbids them.
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise SafetensorsError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def read_safetensors(path):
    """Reads a file; returns (tensors, metadata, dtypes).

    tensors: dict name -> numpy array (native byte order, C order), in header order;
    metadata: dict of strings; dtypes: dict name -> safetensors dtype string.
    """
    with open(path, "rb") as fh:
        blob = fh.read()
    return parse_safetensors(blob, str(path))


def parse_safetensors(blob, name="<bytes>"):
    if len(blob) < 8:
        raise SafetensorsError(f"{name}: not a safetensors file ({len(blob)} bytes)")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > MAX_HEADER or hlen > len(blob) - 8:
        raise SafetensorsError(f"{name}: header length {hlen} is impossible")
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"),
                            object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, SafetensorsError) as e:
        raise SafetensorsError(f"{name}: bad header: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: header is not an object")
    data = memoryview(blob)[8 + hlen:]
    metadata = header.pop("__metadata__", {}) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{name}: __metadata__ must map strings to strings")
    tensors, dtypes, spans = {}, {}, []
    for tname, info in header.items():
        where = f"{name}: tensor {tname!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: needs exactly dtype, shape, data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise SafetensorsError(f"{where}: unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
            raise SafetensorsError(f"{where}: bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int and o >= 0 for o in offsets)):
            raise SafetensorsError(f"{where}: bad data_offsets {offsets!r}")
        begin, end = offsets
        np_dtype = np.dtype(DTYPES[dtype])
        nbytes = int(np.prod(shape, dtype=object)) * np_dtype.itemsize
        if not begin <= end <= len(data) or end - begin != nbytes:
            raise SafetensorsError(f"{where}: data_offsets {offsets} do not fit "
                                   f"{dtype}{shape} in {len(data)} bytes")
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        tensors[tname] = arr.astype(np_dtype.newbyteorder("="))  # a private, native copy
        dtypes[tname] = dtype
        spans.append((begin, end, tname))
    # The tensors must tile the data buffer exactly (as the reference requires).
    at = 0
    for begin, end, tname in sorted(spans):
        if begin != at:
            raise SafetensorsError(f"{name}: tensor {tname!r} overlaps or leaves a gap")
        at = end
    if at != len(data):
        raise SafetensorsError(f"{name}: tensors cover {at} of {len(data)} data bytes")
    return tensors, metadata, dtypes


def encode_safetensors(tensors, metadata=None, ensure_ascii=True):
    """Bytes of a safetensors file.

    tensors: dict name -> array, or a list of (name, array) or (name, array, dtype)
    (dtype a safetensors string; "BF16" takes uint16 bit patterns). Order is kept.
    ensure_ascii=True writes non-ASCII names as \\uXXXX escapes (as json.dumps does by
    default), False writes raw UTF-8: readers must accept both.
    """
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header, chunks, at = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    for item in items:
        tname, arr = item[0], np.asarray(item[1])
        if tname == "__metadata__" or tname in header:
            raise ValueError(f"bad or repeated tensor name {tname!r}")
        dtype = item[2] if len(item) > 2 else _FROM_NUMPY.get((arr.dtype.kind, arr.dtype.itemsize))
        if dtype not in DTYPES:
            raise TypeError(f"tensor {tname!r}: no safetensors dtype for {arr.dtype}")
        raw = np.ascontiguousarray(arr, dtype=np.dtype(DTYPES[dtype])).tobytes()
        header[tname] = {"dtype": dtype, "shape": list(arr.shape),
                         "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=ensure_ascii).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None, ensure_ascii=True):
    """Writes a file (see encode_safetensors) via a temporary file and a rename."""
    blob = encode_safetensors(tensors, metadata, ensure_ascii)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)


def data_section(blob):
    """The data buffer of a safetensors file's bytes (what the fingerprint hashes)."""
    (hlen,) = struct.unpack("<Q", blob[:8])
    return blob[8 + hlen:]
