"""The learning-free sparse codec from Python (docs/SPARSE.md): wedges <-> streams.

No model: the occupancy is coded exactly and every non-zero value within a
bound E in log2(ADC+1) (0: lossless), or per wedge the finest bound that
meets a ratio. Any uint16 wedge is accepted (values above 1023 too). The
streams are the bytes `bcae compress --codec sparse` stores in a container.
"""

import numpy as np

from . import _bcae

#: The largest bound, 8 (a factor 256 either way).
SPARSE_MAX_ERROR = _bcae.SPARSE_MAX_ERROR


def _options(max_error, ratio):
    """(max_error, ratio) as the library takes them; one or the other."""
    if ratio is None:
        return float(max_error), 0.0
    if max_error:
        raise _bcae.InvalidArgumentError(
            "give max_error or ratio, not both (ratio chooses the bound per wedge)")
    ratio = float(ratio)
    if not ratio > 0:
        raise _bcae.InvalidArgumentError(f"ratio must be > 0, not {ratio}")
    return 0.0, ratio


def sparse_encode(wedges, max_error=0.0, ratio=None, *, threads=None, info=False):
    """Encode wedges with the sparse codec; returns one ``bytes`` stream per wedge.

    ``wedges``: uint16 (192, 249, 16) -> one ``bytes``; (N, 192, 249, 16) -> a
    list of N. Any uint16 value is coded (no 10-bit limit); other dtypes raise
    TypeError. ``max_error`` is the bound E, 0..8 in log2(ADC+1): every voxel
    decodes within it, zeros and hits exactly where they were (0: lossless).
    ``ratio`` R instead chooses per wedge the finest bound (on a grid of 1/512)
    whose stream is at most 1,529,856 / R bytes, like ``--ratio``. The streams
    are the bytes `bcae compress --codec sparse --max-error E` stores.

    Wedges are coded on ``threads`` (None: $BCAE_NUM_THREADS, else all cores),
    one coder each, with the GIL released; the bytes do not depend on it.
    ``info=True`` returns ``(streams, infos)``: per wedge a dict of the bound
    used (``max_error``, exact ``mult``), ``hits``, ``levels``,
    ``occupancy_bytes``, ``value_bytes``, ``total_bytes``, ``stored`` (raw
    fallback) and ``met`` (ratio mode: the ratio was reached).
    """
    e, r = _options(max_error, ratio)
    single = getattr(wedges, "ndim", 0) == 3
    streams, infos = _bcae.sparse_encode(wedges, e, r, threads)
    if single:
        streams, infos = streams[0], infos[0]
    return (streams, infos) if info else streams


def _is_one_stream(obj):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return True
    return isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and obj.ndim == 1


def sparse_decode(streams, *, output="adc", threads=None, info=False):
    """Decode sparse streams into wedges.

    ``streams``: one bytes-like stream -> uint16 (192, 249, 16); a list of
    them -> (N, 192, 249, 16). ``output='log'`` gives float32 log2(ADC+1), as
    ``bcae decompress --output log``. Every stream is checked (CRC, then every
    decoded field); a damaged or truncated one raises bcae.FormatError naming
    it. Threads and GIL as sparse_encode; ``info=True`` returns
    ``(wedges, infos)``.
    """
    if output not in ("adc", "log"):
        raise _bcae.InvalidArgumentError(f"output must be 'adc' or 'log', not {output!r}")
    single = _is_one_stream(streams)
    wedges, infos = _bcae.sparse_decode([streams] if single else streams, output == "log",
                                        threads)
    if single:
        wedges, infos = wedges[0], infos[0]
    return (wedges, infos) if info else wedges


def sparse_info(stream):
    """What a stream's header says, without decoding it (no CRC check).

    The dict of sparse_encode(info=True): max_error, mult, hits,
    occupancy_bytes, value_bytes, total_bytes, stored; ``levels`` is 0 (it
    needs the quantiser's table) and ``met`` True (a stream does not record
    the ratio asked for).
    """
    return _bcae.sparse_info(stream)
