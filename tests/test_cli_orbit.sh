#!/bin/sh
# test_cli_orbit.sh: `knobs orbit` end to end on a tiny model trained here (30 steps of an MLP on
# the built-in dSprites): a factor sweep (orientation: 40 renderings, the last equal to the first,
# so 39 points, closed; by name and by number; --closed no keeps all 40, open), a sequence file
# (.npy of a rotating bar written here; its position or --values as the value; a repeated first
# frame at the end closes it), orbit.json (fields, one entry per point, valid JSON) and orbit.png
# (its size from --size), the same bytes twice, and the refusals with nothing written: an unknown
# factor, an index out of range, --factor without --index, a built-in dataset as a sequence, a
# .npy of the wrong shape, NaN in the inputs or the values, values of the wrong length, two
# inputs, bad --closed and --size, an unknown flag, --out naming a file.
# Usage: sh tests/test_cli_orbit.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-orbit-XXXXXX)
. "$(dirname "$0")/lib.sh"
absent() { [ ! -e "$1" ] && ok || bad "$1 was written after a failure"; }
png_width() { od -An -tu1 -j16 -N4 "$1" | awk '{ print $3 * 256 + $4 }'; }
json_ok() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>"$T/jerr" && ok || bad "$1 is not JSON: $(cat "$T/jerr")"
  else
    S=$((S + 1)); echo "skip: JSON syntax of $1: no python3"
  fi
}
# npy_head DESCR SHAPE: a .npy 1.0 header of 128 bytes (the dict padded to 117 characters + newline)
npy_head() {
  printf '\223NUMPY\001\000\166\000'
  printf '%-117s\n' "{'descr': '$1', 'fortran_order': False, 'shape': ($2), }"
}
# bar N PERIOD SIDE: N frames (uint8 0/255) of a bar turning once every PERIOD frames, SIDE x SIDE
bar() {
  awk -v n="$1" -v p="$2" -v s="$3" 'BEGIN {
    for (k = 0; k < n; k++) { a = 2 * 3.141592653589793 * (k % p) / p; c = cos(a); d = sin(a)
      for (y = 0; y < s; y++) for (x = 0; x < s; x++) {
        u = (x - s / 2 + 0.5) * c + (y - s / 2 + 0.5) * d; v = -(x - s / 2 + 0.5) * d + (y - s / 2 + 0.5) * c
        printf "%s", (u < s * 0.3 && u > -s * 0.3 && v < s * 0.1 && v > -s * 0.1) ? "1" : "0" } } }' | tr '01' '\000\377'
}
# int64 values 0..N-1
ints() { i=0; while [ $i -lt "$1" ]; do printf "\\$(printf %03o $i)\\000\\000\\000\\000\\000\\000\\000"; i=$((i + 1)); done; }

M="$T/model"
"$K" train --arch mlp --hidden 16 --latents 3 --steps 30 --threads 1 --out "$M" --quiet >"$T/out" 2>&1 || bad "training the tiny model: $(tail -3 "$T/out")"

expect 0 "usage: knobs orbit" "$K" orbit --help
expect 0 "orbit" "$K" help
expect 0 "--no-refine" "$K" help orbit

# a factor sweep: heart (shape 2), scale 5, centre: index ((2*6+5)*40*32 + 16)*32 + 16
I=696848
expect 0 "winding" "$K" orbit --model "$M" --factor orientation --index $I --out "$T/a"
grep -q "39 points of 3 latents" "$T/out" && ok || bad "table: $(cat "$T/out")"
grep -q "circular-linear R^2" "$T/out" && grep -q "plane share" "$T/out" && ok || bad "table lacks rows: $(cat "$T/out")"
for f in orbit.json orbit.png; do [ -s "$T/a/$f" ] && ok || bad "no $f"; done
ls "$T/a" | grep -q "tmp-" && bad "a temporary file was left" || ok
j="$T/a/orbit.json"
json_ok "$j"
grep -q '"n": 39,' "$j" && grep -q '"inputs": 40,' "$j" && grep -q '"closed": true' "$j" && grep -q '"dropped_duplicate": true' "$j" &&
  grep -q '"factor": "orientation"' "$j" && grep -q '"index": 696848' "$j" && ok || bad "orbit.json: $(head -c 600 "$j")"
[ "$(grep -c '"xy"' "$j")" = 39 ] && ok || bad "orbit.json has $(grep -c '"xy"' "$j") points, want 39"
grep -q '"class": 38}' "$j" && ! grep -q '"class": 39}' "$j" && ok || bad "classes of the points"
grep -q '"method": "Kasa.s algebraic fit refined geometrically' "$j" && ok || bad "circle method"
[ "$(png_width "$T/a/orbit.png")" = 512 ] && ok || bad "orbit.png width $(png_width "$T/a/orbit.png"), want 512"
# the same command, the same bytes
expect 0 "" "$K" orbit --model "$M" --factor orientation --index $I --out "$T/a2"
cmp -s "$T/a/orbit.json" "$T/a2/orbit.json" && cmp -s "$T/a/orbit.png" "$T/a2/orbit.png" && ok || bad "not deterministic"
# by number, with the dataset named, open, Kasa only, a small picture, one thread
expect 0 "open (--closed no)" "$K" orbit --model "$M" --factor 2 --index $I --data dsprites --closed no --no-refine \
  --size 128 --threads 1 --out "$T/b"
grep -q '"n": 40,' "$T/b/orbit.json" && grep -q '"closed": false' "$T/b/orbit.json" && grep -q '"refine_steps": 0,' "$T/b/orbit.json" &&
  grep -q '"method": "Kasa.s algebraic fit"' "$T/b/orbit.json" && ok || bad "open orbit.json: $(head -c 600 "$T/b/orbit.json")"
[ "$(png_width "$T/b/orbit.png")" = 128 ] && ok || bad "--size 128 drew $(png_width "$T/b/orbit.png")"
expect 0 "closed (--closed yes)" "$K" orbit --model "$M" --factor scale --index $I --closed yes --out "$T/c"
grep -q '"n": 6,' "$T/c/orbit.json" && ok || bad "scale sweep: $(head -c 300 "$T/c/orbit.json")"

# a sequence: 12 frames of a bar turning (period 12), and 13 with the first repeated at the end
{ npy_head '|u1' '12, 1, 64, 64'; bar 12 12 64; } >"$T/seq.npy"
{ npy_head '|u1' '13, 1, 64, 64'; bar 13 12 64; } >"$T/seq13.npy"
{ npy_head '<i8' '12,'; ints 12; } >"$T/v.npy"
expect 0 "orbit of the 12 inputs" "$K" orbit --model "$M" --data "$T/seq.npy" --out "$T/s"
grep -q '"source": "sequence"' "$T/s/orbit.json" && grep -q '"values_from": "the position' "$T/s/orbit.json" &&
  grep -q '"n": 12,' "$T/s/orbit.json" && grep -q '"closed": false' "$T/s/orbit.json" && ok || bad "sequence orbit.json: $(head -c 600 "$T/s/orbit.json")"
json_ok "$T/s/orbit.json"
expect 2 "cannot read --values" "$K" orbit --model "$M" --data "$T/seq13.npy" --values "$T/v13.npy" --out "$T/s13"  # not there yet
absent "$T/s13"
{ npy_head '<i8' '13,'; ints 13; } >"$T/v13.npy"
expect 0 "which it duplicates (dropped)" "$K" orbit --model "$M" --data "$T/seq13.npy" --values "$T/v13.npy" --out "$T/s13"
grep -q '"n": 12,' "$T/s13/orbit.json" && grep -q '"closed": true' "$T/s13/orbit.json" && grep -q '"value": 11}' "$T/s13/orbit.json" &&
  grep -q "v13.npy" "$T/s13/orbit.json" && ok || bad "closed sequence orbit.json: $(head -c 600 "$T/s13/orbit.json")"
w=$(sed -n 's/.*"winding": \([-0-9.e]*\),/\1/p' "$T/s13/orbit.json")
awk -v w="$w" 'BEGIN { r = w - int(w); if (r < 0) r = -r; exit !(r < 1e-6 || r > 1 - 1e-6) }' && ok || bad "a closed orbit winds $w times"

# refusals, nothing written
expect 1 "no such factor" "$K" orbit --model "$M" --factor colour --index $I --out "$T/x1"; absent "$T/x1"
grep -q "orientation" "$T/err" && ok || bad "the message does not list the factors: $(cat "$T/err")"
expect 1 "index 737280 out of range" "$K" orbit --model "$M" --factor orientation --index 737280 --out "$T/x2"; absent "$T/x2"
expect 1 "needs --index" "$K" orbit --model "$M" --factor orientation --out "$T/x3"; absent "$T/x3"
expect 1 "built-in dataset" "$K" orbit --model "$M" --data dsprites --out "$T/x4"; absent "$T/x4"
{ npy_head '|u1' '12, 1, 32, 32'; bar 12 12 32; } >"$T/small.npy"
expect 2 "64" "$K" orbit --model "$M" --data "$T/small.npy" --out "$T/x5"; absent "$T/x5"
grep -q "32" "$T/err" && ok || bad "the shape message does not name the file's shape: $(cat "$T/err")"
{ npy_head '<f4' '3, 1, 64, 64'; head -c 20000 /dev/zero; printf '\000\000\300\177'; head -c 29148 /dev/zero; } >"$T/nan.npy"
expect 2 "NaN" "$K" orbit --model "$M" --data "$T/nan.npy" --out "$T/x6"; absent "$T/x6"
{ npy_head '<f8' '12,'; ints 3; printf '\000\000\000\000\000\000\370\177'; ints 8; } >"$T/vnan.npy"
expect 2 "value of point 3 holds NaN" "$K" orbit --model "$M" --data "$T/seq.npy" --values "$T/vnan.npy" --out "$T/x7"; absent "$T/x7"
expect 1 "expected 12 values" "$K" orbit --model "$M" --data "$T/seq.npy" --values "$T/v13.npy" --out "$T/x8"; absent "$T/x8"
{ npy_head '|u1' '2, 1, 64, 64'; bar 2 12 64; } >"$T/two.npy"
expect 1 "at least 3" "$K" orbit --model "$M" --data "$T/two.npy" --out "$T/x9"; absent "$T/x9"
expect 1 "--closed maybe" "$K" orbit --model "$M" --factor orientation --index $I --closed maybe --out "$T/x10"; absent "$T/x10"
expect 1 "--size" "$K" orbit --model "$M" --factor orientation --index $I --size 10 --out "$T/x11"; absent "$T/x11"
expect 1 "--bogus" "$K" orbit --model "$M" --factor orientation --index $I --bogus --out "$T/x12"; absent "$T/x12"
expect 1 "--values is for a sequence" "$K" orbit --model "$M" --factor orientation --index $I --values "$T/v.npy" --out "$T/x13"
absent "$T/x13"
echo "a file" >"$T/file"
expect 2 "nothing written" "$K" orbit --model "$M" --factor orientation --index $I --out "$T/file"
[ "$(cat "$T/file")" = "a file" ] && ok || bad "--out FILE was changed"
ls "$T" | grep -q "tmp-" && bad "a temporary file was left in $T" || ok

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
