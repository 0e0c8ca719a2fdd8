"""Editing safetensors model files for tests: read and write the header and
the tensor bytes, and make "another model" (the same shapes, another
fingerprint). Tests that edit weights must drop the file's `bcae.sha256`
metadata, or the checksum refuses the edited copy before what the test
means to check (a fingerprint mismatch, non-finite weights) is reached.

Used by tests/cli_*.py (run from this folder) and, through
$BCAE_SOURCE_DIR/tests on sys.path, by the Python and HDF5 tests."""
import json
import struct


def read(path):
    """(header dict, tensor bytes as a bytearray)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    n = struct.unpack_from("<Q", raw)[0]
    return json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])


def write(path, header, data):
    """The header padded to 8 bytes with spaces, as safetensors allows."""
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + bytes(data))
    return path


def drop_checksum(header):
    (header.get("__metadata__") or {}).pop("bcae.sha256", None)
    return header


def other_model(src, dst):
    """src with a low mantissa bit of its first weight flipped, without the
    checksum: another fingerprint, the same architecture and code shape."""
    header, data = read(src)
    data[1] ^= 0x01
    return write(dst, drop_checksum(header), data)
