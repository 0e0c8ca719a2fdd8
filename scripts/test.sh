#!/usr/bin/env bash
# The whole test suite: a Release build with every test (unit, NumPy interop
# and parity, CLI, fuzzing), then all but the libFuzzer run again under AddressSanitizer
# and UndefinedBehaviorSanitizer. Run ./scripts/install-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
./scripts/build.sh
ctest --test-dir build --output-on-failure -j "$jobs"
echo
echo "== sanitizer build (ASan + UBSan): every test but the libFuzzer run (it has its own)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBCAE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$jobs" -E fuzz_npy_libfuzzer
