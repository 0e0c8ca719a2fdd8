"""The BCAE HDF5 filter from Python (docs/HDF5.md).

The filter itself is a C plugin, libH5Zbcae.so, that HDF5 loads from
HDF5_PLUGIN_PATH (or from its default plugin folder); h5py needs nothing
else. These helpers find it and build the dataset-creation arguments, for a
model's codes or for the sparse codec's streams.
"""

import os

from . import _bcae

HDF5_FILTER_ID = _bcae.HDF5_FILTER_ID


def hdf5_plugin_dir():
    """The folder holding libH5Zbcae.so, as built or installed with this package, or None.

    None when the package was built without the plugin (e.g. by pip against a
    library installed elsewhere): set HDF5_PLUGIN_PATH yourself then.
    """
    try:
        from ._config import HDF5_PLUGIN_DIR
    except ImportError:
        return None
    if HDF5_PLUGIN_DIR and os.path.isfile(os.path.join(HDF5_PLUGIN_DIR, "libH5Zbcae.so")):
        return HDF5_PLUGIN_DIR
    return None


def register_hdf5_plugin():
    """Puts the plugin's folder first on h5py's HDF5 plugin path; returns the folder.

    The same as starting Python with HDF5_PLUGIN_PATH set to it, for a running
    h5py. Raises FileNotFoundError when this package does not know the folder.
    """
    folder = hdf5_plugin_dir()
    if folder is None:
        raise FileNotFoundError(
            "bcae does not know where libH5Zbcae.so is: set HDF5_PLUGIN_PATH to its folder "
            "(docs/HDF5.md)")
    import h5py  # only now: the rest of bcae does not need h5py

    if folder.encode() not in [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())]:
        h5py.h5pl.prepend(folder.encode())
    return folder


def _millionths(e):
    """The bound E as the filter stores it: millionths, never above E."""
    k = round(e * 1e6)
    return k - 1 if k / 1e6 > e else k


def hdf5_filter(model=None, precision=None, *, codec="bcae", max_error=None, ratio=None):
    """Keyword arguments for h5py's create_dataset that store wedges through the filter.

        f.create_dataset("wedges", data=w, chunks=(1, 192, 249, 16), **bcae.hdf5_filter())
        f.create_dataset("wedges", data=w, chunks=(1, 192, 249, 16),
                         **bcae.hdf5_filter(codec="sparse", max_error=0.05))

    ``model``: a bcae.Model (None: the default model); ``precision``: the
    encoder's ('fp32', 'bf16', 'int8'; None: the model's). The cd_values name
    the model by its fingerprint, so reading needs that model (the plugin finds
    it through $BCAE_MODEL or the default) and refuses another. Chunks must be
    whole wedges: (..., 192, 249, 16) of uint16.

    ``codec='sparse'`` stores the sparse codec's streams instead: no model,
    any uint16 value, every voxel within ``max_error`` E in log2(ADC+1)
    (default 0: lossless; stored in millionths, rounded down), or per wedge
    the finest bound meeting ``ratio`` R (stored in thousandths). A chunk
    holds the streams `bcae compress --codec sparse` writes.
    """
    if codec not in ("bcae", "sparse"):
        raise _bcae.InvalidArgumentError(f"codec must be 'bcae' or 'sparse', not {codec!r}")
    if codec == "sparse":
        if model is not None or precision is not None:
            raise _bcae.InvalidArgumentError("codec='sparse' takes no model or precision")
        e = 0.0 if max_error is None else float(max_error)
        if not 0 <= e <= _bcae.SPARSE_MAX_ERROR:
            raise _bcae.InvalidArgumentError(
                f"max_error {e} outside [0, {_bcae.SPARSE_MAX_ERROR}]")
        r = 0
        if ratio is not None:
            if e:
                raise _bcae.InvalidArgumentError("give max_error or ratio, not both")
            r = round(float(ratio) * 1000)
            if not 0 < r < 2**32:
                raise _bcae.InvalidArgumentError(f"ratio {ratio} outside (0, 4294967]")
        opts = (_bcae.HDF5_FILTER_SPARSE, _millionths(e), r)
        return {"compression": HDF5_FILTER_ID, "compression_opts": opts}
    if max_error is not None or ratio is not None:
        raise _bcae.InvalidArgumentError("max_error and ratio are options of codec='sparse'")
    if model is None:
        model = _bcae.Model(precision=precision or "fp32")
    elif precision is not None and precision != model.precision:
        model = _bcae.Model(model.path, precision=precision)
    return {"compression": HDF5_FILTER_ID, "compression_opts": model.hdf5_cd_values()}
