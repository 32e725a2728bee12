#!/bin/sh
# test_cli_faults.sh: the faults a new user hit (issue 9), one check each, run on the built
# binary (under `make test SAN=1` that is build-san/knobs, so ASan sees the CLI's memory):
#  - a model and data of different shapes: the message names the data (it printed freed memory)
#  - `encode --data FILE` encodes every row of the file in order (it drew 10,000 with replacement)
#  - `help --help`, `help data`, and `data list` naming the real flag --data-factors
#  - a command's outputs are committed together or not at all; unknown output extensions refused
#  - exit codes follow the status: 1 for an invalid request, 2 for a runtime failure
# Usage: sh tests/test_cli_faults.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-faults-XXXXXX)
. "$(dirname "$0")/lib.sh"
# lacks PATTERN: the last command's output does not contain it
lacks() { grep -q -- "$1" "$T/err" "$T/out" && bad "output has '$1': $(grep -h -- "$1" "$T/err" "$T/out" | head -3)" || ok; }
npy_shape() { head -c 128 "$1" | LC_ALL=C tr -d '\000' | LC_ALL=C sed -n "s/.*'shape': (\([^)]*\)).*/\1/p"; }
absent() { [ -e "$1" ] && bad "$1 was left behind" || ok; }
no_temps() { ls -a "$1" | grep -q "tmp-\|part-" && bad "a temporary file was left in $1: $(ls -a "$1" | grep "tmp-\|part-")" || ok; }

# a tiny physics run (vectors of 10 values)
PR="$T/phys"
expect 0 "" "$K" train --data physics --steps 5 --batch 8 --hidden 16 --latents 3 --out "$PR" --quiet

# 1. shape mismatch: the message names the dataset (ASan: heap-use-after-free before the fix)
for c in traverse reconstruct; do
  expect 2 "dsprites has observations 1x64x64 but the model takes 10x1x1" "$K" $c --model "$PR" --data dsprites --out "$T/x.png"
done
expect 2 "dsprites has observations 1x64x64 but the model takes 10x1x1" "$K" encode --model "$PR" --data dsprites --out "$T/x.npy"
expect 2 "dsprites has observations 1x64x64 but the model takes 10x1x1" "$K" eval --model "$PR" --data dsprites --metrics mig
absent "$T/x.png"; absent "$T/x.npy"

# 2. encode of a file: every row, in order, one code per row
printf 'a,b,c,d,e,f,g,h,i,j\n' > "$T/abc.csv"
printf '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0\n' > "$T/r0"
printf '2,1,0,-1,-2,3,1,0,1,2\n' > "$T/r1"
printf '%s\n' '-0.5,0.5,-0.5,0.5,1,1,1,-1,-1,-1' > "$T/r2"
cat "$T/abc.csv" "$T/r0" "$T/r1" "$T/r2" > "$T/a.csv"
cat "$T/abc.csv" "$T/r2" "$T/r0" "$T/r1" > "$T/b.csv"
expect 0 "" "$K" encode --model "$PR" --data "$T/a.csv" --out "$T/ca.npy"
[ "$(npy_shape "$T/ca.npy")" = "3, 3" ] && ok || bad "encode of a 3-row file: shape $(npy_shape "$T/ca.npy"), want 3, 3"
expect 0 "" "$K" encode --model "$PR" --data "$T/b.csv" --out "$T/cb.npy"
# rows of 3 float32 (12 bytes) after the 128-byte header: a's row i is b's row (i+1) mod 3
H=128; R=12
cmp -s -i $((H + 0 * R)):$((H + 1 * R)) -n $R "$T/ca.npy" "$T/cb.npy" && ok || bad "row 0 of a.csv is not coded as row 1 of b.csv"
cmp -s -i $((H + 1 * R)):$((H + 2 * R)) -n $R "$T/ca.npy" "$T/cb.npy" && ok || bad "row 1 of a.csv is not coded as row 2 of b.csv"
cmp -s -i $((H + 2 * R)):$((H + 0 * R)) -n $R "$T/ca.npy" "$T/cb.npy" && ok || bad "row 2 of a.csv is not coded as row 0 of b.csv"
cmp -s -i $((H + 0 * R)):$((H + 1 * R)) -n $R "$T/ca.npy" "$T/ca.npy" && bad "rows 0 and 1 have the same code" || ok
# --n explicitly: draws, as for built-in data
expect 0 "" "$K" encode --model "$PR" --data "$T/a.csv" --n 7 --seed 2 --out "$T/cn.npy"
[ "$(npy_shape "$T/cn.npy")" = "7, 3" ] && ok || bad "encode --n 7 of a file: shape $(npy_shape "$T/cn.npy")"
# built-in data: still N drawn (default 10000) with the seed
expect 0 "" "$K" encode --model "$PR" --n 20 --out "$T/cp.npy" --factors "$T/fp.npy"
[ "$(npy_shape "$T/cp.npy")" = "20, 3" ] && ok || bad "encode --n 20 of physics: shape $(npy_shape "$T/cp.npy")"

# 3. help
expect 0 "usage: knobs help" "$K" help --help
expect 0 "factor" "$K" help data
for w in dsprites shapes physics mass friction "480000 observations" ".npy"; do
  grep -q -- "$w" "$T/out" && ok || bad "'knobs help data' lacks '$w'"
done
expect 0 "--data-factors" "$K" data list
lacks "from --factors"

# 4a. all outputs or none
expect 2 "nonexistent-dir" "$K" encode --model "$PR" --n 5 --out "$T/codes.npy" --factors /nonexistent-dir/f.npy
absent "$T/codes.npy"
expect 2 "nonexistent-dir" "$K" encode --model "$PR" --n 5 --out "$T/codes.npy" --logvar "$T/lv.npy" --factors /nonexistent-dir/f.npy
absent "$T/codes.npy"; absent "$T/lv.npy"
no_temps "$T"
# 4b. output names: an image is .png (or .gif for a traversal), an array .npy
expect 1 ".png" "$K" sample --model "$PR" --out "$T/s.jpg"
expect 1 ".gif" "$K" traverse --model "$PR" --out "$T/t.jpg"
expect 1 ".png" "$K" reconstruct --model "$PR" --out "$T/r.jpeg"
expect 1 ".png" "$K" data show physics --out "$T/d.jpg"
expect 1 ".npy" "$K" encode --model "$PR" --out "$T/c.txt"
expect 1 ".npy" "$K" encode --model "$PR" --out "$T/c.npy" --factors "$T/f.csv"
expect 1 ".npy" "$K" data export physics --n 3 --out "$T/e.csv"
expect 1 ".npy" "$K" data export physics --n 3 --out "$T/e.npy" --values "$T/v.txt"
for f in s.jpg t.jpg r.jpeg d.jpg c.txt c.npy e.csv e.npy; do absent "$T/$f"; done
# 4c. "1 threads"
expect 0 "" "$K" data info physics --threads 1
lacks "1 threads"

# 6. exit codes from the status: an invalid request is a usage error (1), a failure 2
expect 1 "out of range" "$K" data show physics --out "$T/d.png" --index 1000000000
expect 1 "obs_dim" "$K" data info physics --obs-dim 2
lacks "\-\-obs-dim 2"
expect 2 "no-such.npy" "$K" data info "$T/no-such.npy"

chmod -R 700 "$T"; rm -rf "$T"
echo "$P passed, $F failed, 0 skipped"
[ "$F" = 0 ]
