"""An independent reader of .bcae containers, written from docs/FORMAT.md alone (NumPy only).

read(path) -> (header dict, [record dicts]); a record's "code" is a float16 array of the code
shape, or None for a zstd record when no `zstd` command is installed ("skipped" says why). In a
file of sparse streams (version 2) a record's "wedge" is the decoded uint16 wedge (by
sparse_decoder.py, written from docs/SPARSE.md) and "code" is None.
Raises ValueError naming the record on any damage. `python3 bcae_reader.py FILE` lists a file.
"""
import os, shutil, struct, subprocess, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparse_decoder  # noqa: E402 (docs/SPARSE.md; next to this file)

T = [0] * 256
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    T[i] = c

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

def read(path):
    f, recs = open(path, "rb"), []
    def take(n, what):
        b = f.read(n)
        if len(b) < n: raise ValueError(f"{path}: truncated {what}")
        return b
    h = take(64, "header")
    version, flags = struct.unpack_from("<HH", h, 4)
    sparse = version == 2 and h[40] == 3
    if h[:4] != b"BCAE" or version not in (1, 2) or flags or not (h[40] == 2 or sparse):
        raise ValueError(f"{path}: not a version-1 or -2 .bcae file of float16 codes or sparse streams")
    arch = take(h[42], "header")
    if struct.unpack("<I", take(4, "header"))[0] != crc32c(h + arch): raise ValueError(f"{path}: header CRC mismatch")
    shape = struct.unpack_from("<4I", h, 44)[:h[41]]
    if sparse and (h[41] or any(h[8:40]) or any(h[44:60])): raise ValueError(f"{path}: bad sparse header")
    raw = 0 if sparse else 2 * int(np.prod(shape))
    hdr = dict(version=version, fingerprint=h[8:40].hex(), arch=arch.decode("ascii"), code_shape=shape,
               sparse=sparse)
    while True:
        where = f"{path}: record {len(recs)}"
        tag = take(4, where)
        if tag == b"BEND":
            end = tag + take(12, "end marker")
            count, crc = struct.unpack_from("<QI", end, 4)
            if crc != crc32c(end[:12]) or count != len(recs) or f.read(1):
                raise ValueError(f"{path}: bad end marker (or bytes after it)")
            return hdr, recs
        rh = tag + take(36, where)
        if tag != b"BREC" or struct.unpack_from("<I", rh, 36)[0] != crc32c(rh[:36]): raise ValueError(f"{where}: bad header")
        plen, enc, _, ndim = struct.unpack_from("<HBBB", rh, 4)
        rawlen, stored = struct.unpack_from("<II", rh, 28)
        if sparse and (enc != 2 or rawlen != stored or not 1 <= stored <= 1529896):
            raise ValueError(f"{where}: bad sparse record")
        if not sparse and (rawlen != raw or enc not in (0, 1)): raise ValueError(f"{where}: bad lengths")
        body = rh + take(plen + stored, where)
        if struct.unpack("<I", take(4, where))[0] != crc32c(body): raise ValueError(f"{where}: CRC mismatch")
        rec = dict(path=body[40:40 + plen].decode("utf-8"), encoding=enc, stored=stored,
                   orig_shape=struct.unpack_from("<4I", rh, 12)[:ndim], code=None, skipped=None)
        payload = body[40 + plen:]
        if sparse:
            if rec["orig_shape"] != (192, 249, 16): raise ValueError(f"{where}: not a wedge")
            try:
                rec["sparse"], rec["wedge"] = sparse_decoder.decode(payload)
            except ValueError as e:
                raise ValueError(f"{where}: sparse stream: {e}") from None
            recs.append(rec)
            continue
        if enc == 1 and shutil.which("zstd"):
            payload = subprocess.run(["zstd", "-dcq"], input=payload, capture_output=True, check=True).stdout
        elif enc == 1:
            rec["skipped"] = "zstd record: no zstd command installed"
        if rec["skipped"] is None:
            if len(payload) != raw: raise ValueError(f"{where}: code is {len(payload)} bytes, not {raw}")
            rec["code"] = np.frombuffer(payload, "<f2").reshape(shape)
        recs.append(rec)

if __name__ == "__main__":
    header, records = read(sys.argv[1])
    print(header)
    for i, r in enumerate(records):
        print(i, r["path"], ("raw", "zstd", "sparse")[r["encoding"]], r["stored"], r["skipped"] or "")
