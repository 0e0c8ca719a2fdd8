#!/bin/sh
# End-to-end checks of `bcae plot`: help, pictures written, usage errors
# (exit 2), failures (exit 1) that leave no file behind.
#
# Usage: cli_plot.sh PATH/TO/bcae WORKDIR
# Plain POSIX sh: the wedge files are written byte by byte, no NumPy needed.
set -u
BCAE=$1
WORK=$2
rm -rf "$WORK"
mkdir -p "$WORK" || exit 1
cd "$WORK" || exit 1

failures=0
checks=0
fail() {
    failures=$((failures + 1))
    echo "FAIL: $*"
}
check() { # check DESCRIPTION COMMAND...
    what=$1
    shift
    checks=$((checks + 1))
    "$@" || fail "$what"
}

# A uint16 wedge .npy: 128-byte header (format 1.0), then zeros; VOXELS
# "a z l adc" quadruples set single voxels.
HEADER_DICT="{'descr': '<u2', 'fortran_order': False, 'shape': (192, 249, 16), }"
write_wedge() { # write_wedge FILE [a z l adc]...
    file=$1
    shift
    {
        printf '\223NUMPY\001\000\166\000'          # magic, version 1.0, header length 118
        printf '%-117s\n' "$HEADER_DICT"            # padded so data starts at byte 128
        head -c $((192 * 249 * 16 * 2)) /dev/zero
    } > "$file"
    while [ $# -ge 4 ]; do
        offset=$((128 + 2 * ((($1 * 249) + $2) * 16 + $3)))
        lo=$(($4 % 256))
        hi=$(($4 / 256))
        printf "$(printf '\\%03o\\%03o' "$lo" "$hi")" |
            dd of="$file" bs=1 seek="$offset" conv=notrunc 2> /dev/null
        shift 4
    done
}

# Width of a PNG from its IHDR chunk (bytes 16..19, big-endian).
png_width() {
    od -An -tu1 -j16 -N4 "$1" | awk '{ print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }'
}
is_png() {
    [ -f "$1" ] && [ "$(od -An -c -N4 "$1" | tr -d ' ')" = "211PNG" ]
}
no_temp_files() {
    [ -z "$(find . -name '*.tmp*')" ]
}

# A track of ADC 500 in layer 4, a saturated voxel, and a second wedge with
# one voxel changed.
write_wedge a.npy 20 30 4 500 21 32 4 500 22 34 4 500 23 36 4 500 150 200 9 1023
write_wedge b.npy 20 30 4 0 21 32 4 600 22 34 4 500 23 36 4 500 150 200 9 1023
printf 'not a numpy file at all' > garbage.npy
[ $(($(wc -c < a.npy))) -eq $((128 + 192 * 249 * 16 * 2)) ] || fail "test wedge has the wrong size"

# --help
out=$("$BCAE" plot --help)
rc=$?
check "plot --help exits 0" [ $rc -eq 0 ]
for word in "Usage: bcae plot" --output --layer --scale --title --diff log2; do
    case $out in
    *"$word"*) ;;
    *) fail "plot --help mentions $word" ;;
    esac
done

# Pictures
"$BCAE" plot a.npy -o one.png > stdout.txt 2> stderr.txt
rc=$?
check "plot A -o one.png exits 0 ($(cat stderr.txt))" [ $rc -eq 0 ]
check "one.png is a PNG" is_png one.png
check "nothing on stdout" [ ! -s stdout.txt ]
w_one=$(png_width one.png)

"$BCAE" plot --layer 3 --scale 1 --title "a title" a.npy -o small.png
rc=$?
check "plot with --layer --scale --title exits 0" [ $rc -eq 0 ]
check "small.png is a PNG" is_png small.png
check "scale 1 is narrower than scale 2" [ "$(png_width small.png)" -lt "$w_one" ]

"$BCAE" plot -l 15 -s 3 -t T -o short.png a.npy
check "short options work" is_png short.png

"$BCAE" plot a.npy --diff b.npy -o diff.png
rc=$?
check "plot --diff exits 0" [ $rc -eq 0 ]
check "diff.png is a PNG" is_png diff.png
check "the difference figure is wider than two panels" \
    [ "$(png_width diff.png)" -gt $((2 * w_one)) ]

cp one.png keep.png
"$BCAE" plot b.npy -o one.png
rc=$?
check "an existing output is replaced: exit 0" [ $rc -eq 0 ]
check "an existing output is replaced: new picture" test -n "$(cmp one.png keep.png)"
check "no temporary files after success" no_temp_files

# Usage errors: exit 2, a message, no picture
usage_error() { # usage_error DESCRIPTION EXPECTED_WORD ARGS...
    what=$1
    word=$2
    shift 2
    rm -f out.png
    "$BCAE" plot "$@" > stdout.txt 2> stderr.txt
    rc=$?
    checks=$((checks + 1))
    if [ $rc -ne 2 ]; then
        fail "$what: exit $rc, not 2 ($(cat stderr.txt))"
    elif ! grep -q -e "$word" stderr.txt; then
        fail "$what: stderr lacks '$word': $(cat stderr.txt)"
    elif [ -e out.png ] || [ -s stdout.txt ]; then
        fail "$what: wrote something"
    fi
}
usage_error "missing -o" "-o" a.npy
usage_error "no input" "WEDGE" -o out.png
usage_error "two inputs" "--diff" a.npy b.npy -o out.png
usage_error "layer 16" "--layer" a.npy -o out.png --layer 16
usage_error "layer -1" "--layer" a.npy -o out.png --layer -1
usage_error "layer not a number" "--layer" a.npy -o out.png --layer top
usage_error "scale 0" "--scale" a.npy -o out.png --scale 0
usage_error "scale too large" "--scale" a.npy -o out.png --scale 100
usage_error "unknown long option" "--bogus" a.npy -o out.png --bogus
usage_error "unknown short option" "-x" a.npy -o out.png -x
usage_error "option without its value" "-o" a.npy -o
usage_error "usage errors point at --help" "bcae plot --help" a.npy

# Failures: exit 1, the file named, no picture and no temporary left
failure() { # failure DESCRIPTION NAMED ARGS...
    what=$1
    named=$2
    shift 2
    "$BCAE" plot "$@" > stdout.txt 2> stderr.txt
    rc=$?
    checks=$((checks + 1))
    if [ $rc -ne 1 ]; then
        fail "$what: exit $rc, not 1 ($(cat stderr.txt))"
    elif ! grep -q -e "$named" stderr.txt; then
        fail "$what: stderr does not name $named: $(cat stderr.txt)"
    fi
    check "$what: no temporary files" no_temp_files
}
rm -f out.png
failure "missing input" missing.npy missing.npy -o out.png
check "missing input: no picture" [ ! -e out.png ]
failure "malformed input" garbage.npy garbage.npy -o out.png
check "malformed input: no picture" [ ! -e out.png ]
failure "malformed --diff input" garbage.npy a.npy --diff garbage.npy -o out.png
check "malformed --diff input: no picture" [ ! -e out.png ]
failure "unwritable output" no-such-folder/out.png a.npy -o no-such-folder/out.png
check "unwritable output: nothing created" [ ! -e no-such-folder ]
cp keep.png out.png
failure "failure with an existing output" garbage.npy garbage.npy -o out.png
check "a failure leaves an existing output as it was" cmp -s out.png keep.png

echo "cli_plot: $checks checks, $failures failed"
[ $failures -eq 0 ]
