#!/usr/bin/python3
"""Gives a BCAE++ / BCAE-HT weights file or checkpoint the reference's tensor names.

    rename_3d_names.py FILE [OUT]       (in place without OUT)

Until 2026-12-06 bcae named these models' output layers `encoder.encoder_output.0.*` and
`decoder.decoder_{clf,reg}.decoder_output.0.*`; the reference code keeps them inside
`layers` (`encoder.layers.encoder_output.0.*`, `decoder.decoder_clf.layers.decoder_output.0.*`;
SPEC section 3). This rewrites the names in the JSON header (a checkpoint's
`optim.exp_avg.` / `optim.exp_avg_sq.` copies too) and nothing else: tensor order, data
bytes (so the fingerprint) and metadata stay as they are, and the header is laid out as
bcae's writer lays it out (compact JSON padded with spaces to a multiple of 8 bytes), so
the result is the file bcae itself would write. bcae still loads the old names
(src/model/bcae3d.c, bcae3d_old_name); this is for files that should carry the new ones.
A file already renamed, or of another architecture, is left alone. Standard library only.
"""

import json
import os
import re
import struct
import sys

MOVED = re.compile(r"(^|\.)(encoder\.|decoder_clf\.|decoder_reg\.)(encoder_output|decoder_output)\.")


def layout(header):
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    return text + b" " * (-len(text) % 8)


def rename(blob, name="<bytes>"):
    """(new file bytes, number of names changed)."""
    n = struct.unpack("<Q", blob[:8])[0]
    raw = blob[8:8 + n]
    header = json.loads(raw)
    if layout(header) != raw:
        raise ValueError(f"{name}: header not laid out as bcae writes it; not touching it")
    arch = header.get("__metadata__", {}).get("arch")
    if arch not in ("bcae++", "bcae-ht"):
        return blob, 0
    out, changed = {}, 0
    for key, value in header.items():
        new = MOVED.sub(r"\1\2layers.\3.", key)
        changed += new != key
        out[new] = value
    text = layout(out)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:], changed


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    src = argv[1]
    dst = argv[2] if len(argv) == 3 else src
    with open(src, "rb") as fh:
        blob = fh.read()
    new, changed = rename(blob, src)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(new)
    os.replace(tmp, dst)
    print(f"{dst}: {changed} tensor names changed, {len(blob) - 8 - struct.unpack('<Q', blob[:8])[0]}"
          f" data bytes unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
