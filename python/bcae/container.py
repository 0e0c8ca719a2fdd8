"""The .bcae container from Python: read records (name, code, decoded wedge),
write them atomically, and one-call compress / decompress (docs/FORMAT.md).

A container holds either a model's float16 codes (format version 1) or the
sparse codec's streams (version 2, no model; docs/SPARSE.md); readers tell
them apart from the header."""

import os
import warnings
from typing import NamedTuple, Optional

import numpy as np

from . import _bcae
from .sparse import _options, sparse_decode, sparse_encode

WEDGE_SHAPE = _bcae.WEDGE_SHAPE
CODECS = ("bcae", "sparse")


class Record(NamedTuple):
    """One record of a container.

    index: position in the file, from 0. name: the stored relative path (what
    `bcae decompress` writes under OUTDIR). shape: the original array's shape.
    code: float16, the container's code shape; in a file of sparse streams,
    the record's stream (bytes). wedge: the decoded wedge (uint16 raw ADC, or
    float32 log2(ADC+1) with output='log'), or None when the container was
    opened with decode=False.
    """

    index: int
    name: str
    shape: tuple
    code: np.ndarray
    wedge: Optional[np.ndarray]


class Container:
    """A .bcae file opened for reading.

    ``Container(path, model=None, *, decode=True, output='adc', force=False)``

    Iterating yields a Record per wedge in file order, each verified (CRCs,
    record count) as `bcae decompress` verifies it, and decoded 16 at a time. ``container[i]`` reads record i (negative i counts from
    the end); the first random access scans the file once to index it.
    ``len(container)`` counts the records (the same scan).

    The model decodes the codes: None loads the default model (only when a
    record is first decoded). It must be the one the file names (fingerprint,
    architecture, code shape), else bcae.UnsupportedError; ``force=True``
    decodes with another model of the same code shape, with a warning, like
    `bcae decompress --force`. ``decode=False`` gives codes only, no model.

    A file of sparse streams (``codec == 'sparse'``, written by
    ``bcae compress --codec sparse`` or ``ContainerWriter(codec='sparse')``)
    needs no model: ``model`` is None (one given is not used, with a warning,
    as the CLI says), each record's ``code`` is its stream (bytes), and the
    streams decode on ``threads`` (None: $BCAE_NUM_THREADS, else all cores).

    Use it as a context manager, or call close().
    """

    def __init__(self, path, model=None, *, decode=True, output="adc", force=False,
                 threads=None):
        if output not in ("adc", "log"):
            raise _bcae.InvalidArgumentError(f"output must be 'adc' or 'log', not {output!r}")
        self.path = os.fspath(path)
        self._reader = _bcae.ContainerReader(self.path)
        info = self._reader.info
        #: Format version of the file (1: a model's codes, 2: sparse streams).
        self.version = info["version"]
        #: 'bcae' (a model's codes) or 'sparse' (the sparse codec's streams).
        self.codec = "sparse" if info["code_dtype"] == "sparse" else "bcae"
        #: SHA-256 of the weights of the model that made the codes (hex; zeros for sparse).
        self.fingerprint = info["fingerprint"]
        #: The model's architecture, as the header names it ('sparse' for sparse).
        self.arch = info["arch"]
        #: Shape of one code (() for sparse: a stream per record).
        self.code_shape = tuple(info["code_shape"])
        if self.codec == "sparse" and model is not None:
            warnings.warn(f"{self.path} holds sparse streams: no model is used", stacklevel=2)
            model = None
        self._model = model
        self._model_checked = False
        self._decode = decode
        self._output = output
        self._force = force
        self._threads = threads
        self._index = None  # [(offset, record_bytes)], built by the first random access

    # -- the model ---------------------------------------------------------------
    @property
    def model(self):
        """The model that decodes the records (loaded and checked on first use); None for sparse."""
        if self.codec == "sparse":
            return None
        if self._model is None:
            self._model = _bcae.Model()
        if not self._model_checked:
            try:
                self._reader.check_model(self._model)
            except _bcae.UnsupportedError:
                if not self._force or tuple(self._model.code_shape) != self.code_shape:
                    raise
                warnings.warn(f"{self.path}: decoding with a model other than {self.fingerprint}",
                              stacklevel=3)
            self._model_checked = True
        return self._model

    def _wedges(self, records):
        """Decodes the codes of `records` (one batch) into Records."""
        if not self._decode:
            return [Record(i, n, s, c, None) for i, n, s, c in records]
        for i, name, shape, _ in records:
            if tuple(shape) != WEDGE_SHAPE:
                raise _bcae.ShapeError(
                    f"{self.path}: record {i} ({name!r}) is not a (192, 249, 16) wedge")
        if self.codec == "sparse":
            try:
                wedges = sparse_decode([c for _, _, _, c in records], output=self._output,
                                       threads=self._threads)
            except _bcae.Error:
                self._raise_bad_record(records)
                raise
            return [Record(i, n, s, c, w) for (i, n, s, c), w in zip(records, wedges)]
        codes = np.stack([c for _, _, _, c in records])
        wedges = self.model.decode(codes, output=self._output)
        return [Record(i, n, s, c, w) for (i, n, s, c), w in zip(records, wedges)]

    def _raise_bad_record(self, records):
        """Raises the error of the first of `records` whose stream does not
        decode, naming the file and the record as `bcae decompress` does."""
        for i, name, _, stream in records:
            try:
                sparse_decode(stream, threads=1)
            except _bcae.Error as e:
                err = type(e)(f'{self.path}: record {i} ("{name}"): {e}')
                err.status = e.status
                raise err from None

    # -- sequential ----------------------------------------------------------------
    def __iter__(self):
        """Records in file order, read by a reader of their own (iterations may nest)."""
        # The library decodes four wedges per pass whatever the count (so that
        # results never depend on the batch): decoding one record at a time
        # would pay for four. 16 is a few passes and ~25 MB of wedges.
        batch = 16
        with _bcae.ContainerReader(self.path) as reader:
            pending = []
            while True:
                rec = reader.next()
                if rec is None:
                    break
                index, name, shape, code, _, _ = rec
                pending.append((index, name, shape, code))
                if len(pending) == batch:
                    yield from self._wedges(pending)
                    pending = []
            if pending:
                yield from self._wedges(pending)

    def names(self):
        """The stored names, in file order (reads the whole file, decodes nothing)."""
        self._build_index()
        return [name for name, _, _ in self._index]

    def codes(self):
        """Every code as one float16 array (N,) + code_shape (decodes nothing).

        For sparse streams, the list of the records' streams (bytes)."""
        with _bcae.ContainerReader(self.path) as reader:
            out = []
            while (rec := reader.next()) is not None:
                out.append(rec[3])
        if self.codec == "sparse":
            return out
        if not out:
            return np.zeros((0,) + self.code_shape, np.float16)
        return np.stack(out)

    # -- random access ---------------------------------------------------------------
    def _build_index(self):
        if self._index is not None:
            return
        index = []
        with _bcae.ContainerReader(self.path) as reader:
            while (rec := reader.next()) is not None:
                _, name, _, _, offset, nbytes = rec
                index.append((name, offset, nbytes))
        self._index = index

    def __len__(self):
        self._build_index()
        return len(self._index)

    def __getitem__(self, i):
        """Record i (an int; negative counts from the end), verified again as it is read."""
        self._build_index()
        n = len(self._index)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.path}: record index out of range (the file has {n})")
        _, offset, nbytes = self._index[i]
        _, name, shape, code, _, _ = self._reader.read_at(offset, nbytes)
        return self._wedges([(i, name, shape, code)])[0]

    # -- lifetime -------------------------------------------------------------------
    def close(self):
        """Closes the file (iterators already started keep their own)."""
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.codec == "sparse":
            return f"<bcae.Container {self.path!r} sparse streams>"
        return f"<bcae.Container {self.path!r} {self.arch} code {self.code_shape}>"


class ContainerWriter:
    """Writes a .bcae file atomically, as `bcae compress` does.

    ``ContainerWriter(path, model=None, *, codec='bcae', max_error=None, ratio=None,
    threads=None, zstd=0, append=False, repair=False)``

    The file is written under a temporary name and renamed onto ``path`` by
    close() (or the end of a ``with`` block), so no reader sees a partial file;
    abort() (or an exception in the block) leaves no file, or with
    ``append=True`` restores the old one. ``model`` (None: the default model)
    names the codes in the header and encodes the wedges of write().
    ``zstd`` 1..22 adds a lossless stage to every code (0: none), like
    ``--zstd``; ``append`` adds to an existing file of the same model, like
    ``--append``; ``repair`` (with append) first drops an interrupted append's
    incomplete tail.

    ``codec='sparse'`` writes the sparse codec's streams instead (format
    version 2, no model: ``model`` stays None), as
    ``bcae compress --codec sparse``: ``max_error`` E (0..8, default 0:
    lossless) or ``ratio`` R, as in bcae.sparse_encode; the wedges are coded
    on ``threads``. No ``zstd``: the streams are entropy-coded already.
    """

    def __init__(self, path, model=None, *, codec="bcae", max_error=None, ratio=None,
                 threads=None, zstd=0, append=False, repair=False):
        if codec not in CODECS:
            raise _bcae.InvalidArgumentError(f"codec must be 'bcae' or 'sparse', not {codec!r}")
        self.path = os.fspath(path)
        #: 'bcae' (a model's codes) or 'sparse'.
        self.codec = codec
        if codec == "sparse":
            if model is not None:
                raise _bcae.InvalidArgumentError("codec='sparse' takes no model")
            _options(max_error or 0.0, ratio)  # checked now, before a file is created
            self._sparse = {"max_error": max_error or 0.0, "ratio": ratio}
            self._threads = threads
            self.model = None
        else:
            if max_error is not None or ratio is not None:
                raise _bcae.InvalidArgumentError(
                    "max_error and ratio are options of codec='sparse'")
            self.model = _bcae.Model() if model is None else model
        #: Sparse: the info dicts of the streams written (bound used, bytes), in order.
        self.infos = []
        self._w = _bcae.ContainerWriterBase(self.path, self.model, append=append, repair=repair,
                                            zstd=zstd)
        self._names = set()

    def add(self, name, code, shape=WEDGE_SHAPE):
        """Adds a record from a code already made (float16, the model's code shape).

        ``name`` is the stored relative path (UTF-8, '/'-separated, no '.' or
        '..' parts); a name given twice to one writer is refused, as the CLI
        refuses it, because decompressing would write both to one file.
        For a sparse file ``code`` is a stream (bytes, bcae.sparse_encode).
        """
        if name in self._names:
            raise _bcae.InvalidArgumentError(f"{self.path}: {name!r} is already stored")
        if self.codec == "sparse":
            self._w.append_stream(name, code, shape)
        else:
            self._w.append(name, code, shape)
        self._names.add(name)

    def write(self, names, wedges):
        """Encodes wedges with the model (or the sparse codec) and adds them as records.

        ``wedges``: uint16 (192, 249, 16) with one name (a str), or
        (N, 192, 249, 16) with N names. Encoding runs in one call (``model.batch``
        wedges per pass), so the codes equal `bcae compress`'s; sparse streams
        are the bytes of `bcae compress --codec sparse`, and their info dicts
        are appended to ``infos``.
        """
        single = isinstance(names, (str, bytes, os.PathLike))
        names = [names] if single else list(names)
        if self.codec == "sparse":
            arr = wedges[None] if getattr(wedges, "ndim", 0) == 3 else wedges
            if len(names) != len(arr):
                raise _bcae.ShapeError(f"{len(names)} names for {len(arr)} wedges")
            streams, infos = sparse_encode(arr, **self._sparse, threads=self._threads, info=True)
            for name, stream, info in zip(names, streams, infos):
                self.add(name, stream)
                self.infos.append(info)
            return
        codes = self.model.encode(wedges)
        if codes.ndim == len(self.model.code_shape):
            codes = codes[None]
        if len(names) != len(codes):
            raise _bcae.ShapeError(f"{len(names)} names for {len(codes)} wedges")
        for name, code in zip(names, codes):
            self.add(name, code)

    @property
    def stats(self):
        """records, file_bytes, new_records, new_orig_bytes, new_bytes, repaired_bytes."""
        return self._w.stats

    def close(self):
        """Finishes the file (end marker, fsync, rename) and returns the stats."""
        return self._w.finish()

    def abort(self):
        """Discards what this writer added."""
        self._w.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._w.closed:
            if exc_type is None:
                self._w.finish()
            else:
                self._w.abort()
        return False


def _default_names(n):
    return [f"wedge_{i:06d}.npy" for i in range(n)]


def compress(path, wedges, names=None, *, model=None, zstd=0, codec="bcae", max_error=None,
             ratio=None, threads=None):
    """Encodes wedges into a new .bcae file and returns the writer's stats.

    ``wedges`` uint16 (N, 192, 249, 16) (or one wedge); ``names`` the stored
    relative paths (default ``wedge_000000.npy``, ...). Same options as
    ContainerWriter: ``codec='sparse'`` with ``max_error`` or ``ratio`` writes
    the sparse codec's streams (no model).
    """
    arr = wedges if getattr(wedges, "ndim", 0) != 3 else wedges[None]
    if names is None:
        names = _default_names(len(arr))
    with ContainerWriter(path, model, codec=codec, max_error=max_error, ratio=ratio,
                         threads=threads, zstd=zstd) as w:
        w.write(names, arr)
    return w.stats


def decompress(path, *, model=None, output="adc", force=False, threads=None):
    """Decodes every record of a .bcae file: ``(names, wedges)``.

    ``wedges``: uint16 (N, 192, 249, 16) raw ADC, or float32 log2(ADC+1) with
    output='log' — the arrays `bcae decompress` writes as .npy files. A file
    of sparse streams needs no model (``threads`` decode it).
    """
    with Container(path, model, output=output, force=force, threads=threads) as c:
        records = list(c)
    dtype = np.float32 if output == "log" else np.uint16
    if not records:
        return [], np.zeros((0,) + WEDGE_SHAPE, dtype)
    return [r.name for r in records], np.stack([r.wedge for r in records])
