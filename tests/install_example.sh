#!/bin/sh
# Installs bcae into a scratch prefix, then builds and runs examples/compress_one.c
# against the installed header, library and pkg-config file only.
# Usage: install_example.sh BUILD_DIR SOURCE_DIR WORK_DIR MODEL
set -eu
build=$1 src=$2 work=$3 model=$4
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name bcae.pc | head -n 1)
[ -n "$pc" ] || { echo "FAILED: no bcae.pc installed"; exit 1; }
[ -f "$work/prefix/include/bcae.h" ] || { echo "FAILED: no bcae.h installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
cc -std=c11 -Wall -Wextra -o "$work/compress_one" "$src/examples/compress_one.c" \
   $(pkg-config --cflags --libs bcae)
"$work/prefix/bin/bcae" simulate --events 1 --seed 2 --out "$work/data" -q >/dev/null
wedge="$work/data/outer/12-2_5-1/sim2_000000.npy"
out=$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir bcae) "$work/compress_one" "$model" "$wedge")
echo "$out"
echo "$out" | grep -q "ratio 31.125" || { echo "FAILED: unexpected output"; exit 1; }
rm -rf "$work"
echo "install_example: 0 failed"
