"""The BCAE HDF5 filter from Python (docs/HDF5.md).

The filter itself is a C plugin, libH5Zbcae.so, that HDF5 loads from
HDF5_PLUGIN_PATH (or from its default plugin folder); h5py needs nothing
else. These helpers find it and build the dataset-creation arguments.
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


def hdf5_filter(model=None, precision=None):
    """Keyword arguments for h5py's create_dataset that store wedges through the filter.

        f.create_dataset("wedges", data=w, chunks=(1, 192, 249, 16), **bcae.hdf5_filter())

    ``model``: a bcae.Model (None: the default model); ``precision``: the
    encoder's ('fp32', 'bf16', 'int8'; None: the model's). The cd_values name
    the model by its fingerprint, so reading needs that model (the plugin finds
    it through $BCAE_MODEL or the default) and refuses another. Chunks must be
    whole wedges: (..., 192, 249, 16) of uint16.
    """
    if model is None:
        model = _bcae.Model(precision=precision or "fp32")
    elif precision is not None and precision != model.precision:
        model = _bcae.Model(model.path, precision=precision)
    return {"compression": HDF5_FILTER_ID, "compression_opts": model.hdf5_cd_values()}
