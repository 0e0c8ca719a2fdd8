"""Builds the extension bcae._bcae against libbcae (docs/PYTHON.md).

pip builds only the extension's own five C files and links the library it
finds; it never compiles libbcae itself, so the package runs the very code
the CLI runs. Where the library comes from, in order:

1. BCAE_BUILD_DIR=DIR: a CMake build tree of this source (DIR/libbcae.so;
   the headers from this source tree);
2. `pkg-config bcae`: an installed libbcae (cmake --install puts bcae.pc in
   PREFIX/lib/pkgconfig; set PKG_CONFIG_PATH when that is not a default).

The extension is linked to libbcae.so with that folder as its run path, and
bcae/_config.py records where the HDF5 plugin is (bcae.hdf5_plugin_dir()).
"""

import os
import shlex
import subprocess

import numpy
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "bcae"], check=True, capture_output=True,
                             text=True).stdout
    except FileNotFoundError:
        raise SystemExit("bcae: pkg-config is missing (Debian: pkg-config), or set BCAE_BUILD_DIR")
    except subprocess.CalledProcessError as e:
        raise SystemExit("bcae: `pkg-config bcae` failed: install libbcae (cmake --install) and "
                         "set PKG_CONFIG_PATH to PREFIX/lib/pkgconfig, or set BCAE_BUILD_DIR to a "
                         f"CMake build tree\n{e.stderr}")
    return out.strip()


def _find_library():
    """(include dirs, library dir, HDF5 plugin dir or None)."""
    build = os.environ.get("BCAE_BUILD_DIR")
    if build:
        build = os.path.abspath(build)
        if not os.path.exists(os.path.join(build, "libbcae.so")):
            raise SystemExit(f"bcae: BCAE_BUILD_DIR={build} has no libbcae.so (build it first)")
        # The headers of the source the tree was built from (this file may be a copy).
        src = os.path.dirname(HERE)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("bcae_SOURCE_DIR:"):
                    src = line.split("=", 1)[1].strip()
        plugin = os.path.join(build, "hdf5", "plugin")
        return ([os.path.join(src, "include"), os.path.join(src, "hdf5")], build,
                plugin if os.path.exists(os.path.join(plugin, "libH5Zbcae.so")) else None)
    incs = [f[2:] for f in shlex.split(_pkg_config("--cflags-only-I")) if f.startswith("-I")]
    libdir = os.path.realpath(_pkg_config("--variable=libdir"))
    plugin = _pkg_config("--variable=hdf5_plugindir")
    return ([os.path.realpath(i) for i in incs], libdir,
            os.path.realpath(plugin) if plugin else None)


INCLUDES, LIBDIR, PLUGIN_DIR = _find_library()


class build_py_with_config(build_py):
    """Also writes bcae/_config.py: where this libbcae's HDF5 plugin is."""

    def run(self):
        super().run()
        path = os.path.join(self.build_lib, "bcae", "_config.py")
        with open(path, "w") as f:
            f.write("# Written by setup.py: the folder of libH5Zbcae.so for this build.\n"
                    f"HDF5_PLUGIN_DIR = {PLUGIN_DIR!r}\n")


setup(
    packages=["bcae"],
    ext_modules=[
        Extension(
            "bcae._bcae",
            sources=[os.path.join("src", f) for f in
                     ("module.c", "model.c", "container.c", "data.c", "train.c",
                      "sparse.c")],
            include_dirs=["src", numpy.get_include(), *INCLUDES],
            library_dirs=[LIBDIR],
            runtime_library_dirs=[LIBDIR],
            libraries=["bcae", "m"],
            define_macros=[("_POSIX_C_SOURCE", "200809L")],
            extra_compile_args=["-std=c11"],
            extra_link_args=[f"-Wl,--version-script={os.path.join(HERE, 'bcae.map')}"],
        )
    ],
    cmdclass={"build_py": build_py_with_config},
)
