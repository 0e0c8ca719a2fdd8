"""bcae — neural compression of sPHENIX TPC wedges, from Python.

A CPython extension over libbcae's public API (include/bcae.h) with NumPy
arrays in and out. A wedge is uint16 (192, 249, 16) raw ADC in [0, 1023]; a
model turns it into a float16 code about 31 times smaller and back.

    import bcae
    wedges = bcae.simulate(events=1, seed=1)           # (24, 192, 249, 16) uint16
    model = bcae.Model()                               # the shipped default model
    codes = model.encode(wedges)                       # (24, 32, 24, 32) float16 for BCAE-2D
    restored = model.decode(codes)                     # uint16 again
    bcae.metrics(wedges[0], restored[0])               # as `bcae metrics --json`

The learning-free sparse codec needs no model (docs/SPARSE.md):

    streams = bcae.sparse_encode(wedges, max_error=0.05)   # one bytes per wedge
    back = bcae.sparse_decode(streams)                     # every value within 0.05
    bcae.compress("w.bcae", wedges, codec="sparse", max_error=0.05)

The results are the CLI's: the codes of `bcae compress` bit for bit, the
wedges of `bcae decompress` value for value. Errors raise bcae.Error
subclasses carrying the library's message; wrong dtypes raise TypeError and
are never converted. The GIL is released around compute. docs/PYTHON.md has
the tour.
"""

from ._bcae import (  # noqa: F401  (re-exported)
    ADC_MAX,
    CALIBRATION_SEED,
    CONTAINER_VERSION,
    HDF5_FILTER_ID,
    HDF5_FILTER_SPARSE,
    HDF5_FILTER_VERSION,
    SPARSE_MAX_ERROR,
    WEDGE_SHAPE,
    WEDGES_PER_EVENT,
    Dataset,
    Error,
    FileError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    Model,
    OutOfMemoryError,
    RangeError,
    ShapeError,
    UnsupportedError,
    default_model_path,
    library_version,
    metrics,
    sim_knobs,
    train_defaults,
)
from . import _bcae
from .container import Container, ContainerWriter, Record, compress, decompress
from .hdf5 import hdf5_filter, hdf5_plugin_dir, register_hdf5_plugin
from .sparse import sparse_decode, sparse_encode, sparse_info

__version__ = library_version

__all__ = [
    "ADC_MAX", "CALIBRATION_SEED", "CONTAINER_VERSION", "HDF5_FILTER_ID", "HDF5_FILTER_SPARSE",
    "HDF5_FILTER_VERSION", "SPARSE_MAX_ERROR", "WEDGE_SHAPE", "WEDGES_PER_EVENT",
    "Error", "FileError", "FormatError", "InternalError", "InvalidArgumentError",
    "OutOfMemoryError", "RangeError", "ShapeError", "UnsupportedError",
    "Model", "Dataset", "Container", "ContainerWriter", "Record",
    "compress", "decompress", "default_model_path", "load_dataset", "metrics", "simulate",
    "sim_knobs", "train", "train_defaults",
    "hdf5_filter", "hdf5_plugin_dir", "register_hdf5_plugin",
    "sparse_decode", "sparse_encode", "sparse_info",
]


def simulate(events=1, seed=1, *, first_event=0, threads=None, info=False, **knobs):
    """Simulate TPC events as `bcae simulate` does and return the wedges.

    Returns uint16 (24 * events, 192, 249, 16): wedge 24 * e + 2 * sector + side
    of event first_event + e, equal to the file
    ``outer/12-2_<sector>-<side>/sim<seed>_<event>.npy`` that
    ``bcae simulate --events N --seed S --first-event K`` writes. Keyword
    arguments other than these name physics knobs (``bcae.sim_knobs()``),
    e.g. ``pileup_mean=0``. The result does not depend on ``threads`` (None:
    $BCAE_NUM_THREADS or all cores). With ``info=True`` returns
    ``(wedges, [dict per event])`` (tracks, pile-up, loopers, vertex).
    """
    return _bcae.simulate(events, seed, first_event, threads, knobs or None, info)


def load_dataset(dir, split="test", limit=None):
    """Read a dataset split into memory: ``(wedges, paths)``.

    ``dir`` holds ``<split>.txt`` (or ``outer/<split>.txt``), as for
    ``bcae compress DIR --split SPLIT``; ``wedges`` is uint16
    (N, 192, 249, 16) and ``paths`` the manifest's relative paths, the names
    the CLI stores. ``limit`` keeps the first N wedges. Each file is checked
    as the CLI checks it (shape, integer values in [0, 1023]). For a lazy view
    use ``bcae.Dataset(dir, split)``.
    """
    ds = Dataset(dir, split)
    n = len(ds) if limit is None else min(len(ds), int(limit))
    return ds.load(range(n)), list(ds.paths[:n])


def train(data_dir, out, *, progress=None, **options):
    """Train a model on a dataset folder, as `bcae train` does (libbcae's bcae_train).

    ``out`` is the weights file, rewritten after every epoch. ``options`` are
    the fields of bcae_train_config with their library defaults
    (``bcae.train_defaults()``): arch ('bcae-2d', 'bcae++', 'bcae-ht',
    'bcae'), m, n, d, features, clf_threshold, num_epochs,
    num_warmup_epochs, sched_steps, sched_gamma, batch_size, learning_rate,
    batches_per_epoch, validation_batches_per_epoch, seed, shuffle, threads,
    clf_bias_init, init, log_path, checkpoint_path, checkpoint_every, resume,
    max_steps, device, precision ('fp32' or 'bf16': mixed-precision training,
    docs/PRECISION.md). Unknown names raise TypeError.

    ``progress(p)`` is called after every training step and validation batch
    with a dict: validation, epoch, step, batch, batches, loss, loss_seg,
    loss_reg, coef, lr, precision, recall, mae, step_seconds, epoch_done. If it
    raises, or Ctrl-C (KeyboardInterrupt) arrives, the run ends after the step
    under way as at ``max_steps`` (the model and the checkpoint written: resume
    with ``resume=``), and the exception is raised then (Ctrl-C is seen when
    train runs on the main thread, where Python handles signals). Training runs
    with the GIL released.
    """
    if "threads" not in options:
        import os
        env = os.environ.get("BCAE_NUM_THREADS")
        if env:
            options["threads"] = int(env)
    config = dict(options, data_dir=data_dir, out=out)
    _bcae.train(config, progress)
