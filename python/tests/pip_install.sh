#!/bin/sh
# The package as a user builds it outside CMake: `cmake --install` into a
# scratch prefix, then `pip install --no-build-isolation --no-index` of
# python/ against that prefix's bcae.pc (offline, Debian's setuptools and
# NumPy). Checks that both the pip-built and the cmake-installed package
# import, give the CMake-built module's codes and sparse streams bit for bit,
# and know where the installed HDF5 plugin is.
# Usage: pip_install.sh BUILD_DIR SOURCE_DIR WORK_DIR PYTHON
set -eu
build=$1 src=$2 work=$3 py=$4
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name bcae.pc | head -n 1)
[ -n "$pc" ] || { echo "FAILED: no bcae.pc installed"; exit 1; }
# A copy, so that the build's leftovers (build/, *.egg-info) stay out of the source tree.
cp -R "$src/python" "$work/python-src"
rm -rf "$work/python-src/build" "$work/python-src"/*.egg-info
unset BCAE_BUILD_DIR
PKG_CONFIG_PATH=$(dirname "$pc") "$py" -m pip install -q --root-user-action=ignore --no-build-isolation --no-index \
    --no-deps --target "$work/site" "$work/python-src"
site=$(cd "$work/prefix" && find . -path "*/dist-packages/bcae/__init__.py" -o \
       -path "*/site-packages/bcae/__init__.py" | head -n 1)
[ -n "$site" ] || { echo "FAILED: cmake --install put no Python package under the prefix"; exit 1; }
installed=$work/prefix/$(dirname "$(dirname "$site")")
plugin=$(find "$work/prefix" -name libH5Zbcae.so | head -n 1)

# The reference codes, from the CMake-built module.
PYTHONPATH="$build/python" "$py" -c '
import bcae, numpy as np, sys
w = bcae.simulate(events=1, seed=4)[5:7]
np.save(sys.argv[1] + "/w.npy", w)
np.save(sys.argv[1] + "/codes.npy", bcae.Model().encode(w).view(np.uint16))
open(sys.argv[1] + "/sparse.bin", "wb").write(b"".join(bcae.sparse_encode(w, 0.05)))
' "$work"

check() {
  label=$1 path=$2
  # From $work: Python puts the current folder first on its path.
  cd "$work"
  PYTHONPATH="$path" "$py" - "$work" "$path" "$plugin" "$label" <<'PY'
import os, sys
import numpy as np
work, path, plugin, label = sys.argv[1:]
import bcae
where = os.path.realpath(bcae.__file__)
assert where.startswith(os.path.realpath(path)), f"{label}: imported {where}, not from {path}"
w = np.load(work + "/w.npy")
codes = bcae.Model().encode(w).view(np.uint16)
assert np.array_equal(codes, np.load(work + "/codes.npy")), f"{label}: codes differ"
back = bcae.Model().decode(codes.view(np.float16))
assert back.shape == w.shape and back.dtype == np.uint16
streams = bcae.sparse_encode(w, 0.05)
assert b"".join(streams) == open(work + "/sparse.bin", "rb").read(), f"{label}: streams differ"
assert np.array_equal(bcae.sparse_decode(streams) != 0, w != 0)
if plugin:
    got = bcae.hdf5_plugin_dir()
    assert got and os.path.samefile(got, os.path.dirname(plugin)), f"{label}: plugin dir {got}"
maps = open("/proc/self/maps").read()
print(f"{label}: ok ({where}; libbcae.so loaded: {'libbcae.so' in maps})")
PY
}
check pip "$work/site"
check cmake-install "$installed"
# pip's module links the installed libbcae.so (the version script keeps it to bcae.h).
if ! ldd "$work"/site/bcae/_bcae*.so | grep -q "$work/prefix"; then
  echo "FAILED: the pip-built module does not link the installed libbcae.so"
  ldd "$work"/site/bcae/_bcae*.so
  exit 1
fi
cd /
rm -rf "$work"
echo "python_pip_install: 0 failed"
