#!/usr/bin/env bash
# The whole test suite: a Release build with every test (unit, NumPy interop
# and PyTorch parity, CLI, training, fuzzing), then the unit, CLI, interop and
# fuzz-replay tests again under AddressSanitizer and UndefinedBehaviorSanitizer, and a
# compile-only CUDA build where the toolkit is installed. Run ./scripts/install-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
./scripts/build.sh
ctest --test-dir build --output-on-failure -j "$jobs"
echo
# The PyTorch parity and training runs repeat, slower, what the Release pass
# checked, and so do the tests re-run with the ISA capped (label isa: the same
# code as the portable modes of the unit tests); the libFuzzer runs carry their
# own sanitizers; install_example builds a plain program against the installed
# (here instrumented) library.
echo "== sanitizer build (ASan + UBSan): unit, CLI, interop and fuzz-replay tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBCAE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$jobs" \
  -LE "parity|train|isa" -E "libfuzzer|install_example"

# The CUDA backend (docs/CUDA.md) is compiled wherever the toolkit is, so it
# never rots; from it run the device choice's own tests and the backend
# conformance test (which reports the CUDA operations as not implemented
# where a GPU is, and the backend as skipped where none is).
if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo
  echo "== CUDA build (-DBCAE_CUDA=ON): compile, bcae --help, the device and conformance tests"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DBCAE_CUDA=ON >/dev/null
  cmake --build build-cuda -j "$jobs"
  build-cuda/bcae --help >/dev/null
  ctest --test-dir build-cuda --output-on-failure -j "$jobs" -R "^(test_device|cli_device|test_backend_ops)$"
fi
