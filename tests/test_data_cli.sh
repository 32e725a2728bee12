#!/bin/sh
# test_data_cli.sh: `knobs data` end to end: list, info, show, export, their usage errors (exit 1,
# the flag named) and runtime errors (exit 2, the file named), and a few steps of `knobs train`
# on the new kinds of data (rendered colour images, physics vectors, a CSV table).
# Usage: sh tests/test_data_cli.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-dcli-XXXXXX)
. "$(dirname "$0")/lib.sh"
skip() { S=$((S + 1)); echo "skip: $*"; }
# npy_shape FILE: the shape tuple in a .npy header
npy_shape() { head -c 128 "$1" | LC_ALL=C tr -d '\000' | LC_ALL=C sed -n "s/.*'shape': (\([^)]*\)).*/\1/p"; }
is_png() { [ "$(head -c 4 "$1" | tail -c 3)" = "PNG" ]; }

expect 0 "show DATASET" "$K" data --help
expect 1 "list" "$K" data
expect 1 "unknown subcommand 'frob'" "$K" data frob
expect 0 "usage: knobs data show" "$K" data show --help
expect 0 "physics" "$K" data list
expect 0 "3dshapes.h5" "$K" data list
expect 0 "480000 observations" "$K" data info shapes
expect 0 "orientation" "$K" data info shapes
expect 0 "mixing matrix A (10 x 3)" "$K" data info physics
expect 0 "mixing matrix A (5 x 3)" "$K" data info physics --obs-dim 5
expect 0 "not identifiable" "$K" data info physics --factor-dist gauss
expect 1 "obs_dim 2" "$K" data info physics --obs-dim 2
expect 1 "unknown factor distribution 'cauchy'" "$K" data info physics --factor-dist cauchy
expect 1 "--noise" "$K" data info physics --noise abc
expect 1 "which dataset" "$K" data info
expect 1 "unknown dataset 'nosuch'" "$K" data info nosuch

# show: one row per factor, a PNG
expect 0 "row 6  orientation" "$K" data show shapes --out "$T/s.png" --seed 2
is_png "$T/s.png" && ok || bad "shapes grid is not a PNG"
expect 0 "each row varies one factor" "$K" data show shapes --out "$T/s2.png" --index 12345 --cols 4
expect 0 "as bars" "$K" data show physics --out "$T/p.png"
is_png "$T/p.png" && ok || bad "physics grid is not a PNG"
expect 1 "--out" "$K" data show shapes
expect 1 "--cols" "$K" data show shapes --out "$T/x.png" --cols 1
expect 1 "out of range" "$K" data show shapes --out "$T/x.png" --index 480000
expect 2 "cannot write" "$K" data show shapes --out /nonexistent-dir/x.png
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  expect 0 "examples of one factor" "$K" data show fashion-mnist --out "$T/f.png"
else
  skip "fashion-mnist: /usr/share/datasets/fashion-mnist not installed (package dataset-fashion-mnist)"
fi

# user data: a CSV, its factors, and the bad cases
printf 'x,y,z\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n' > "$T/t.csv"
printf 'kind\n0\n1\n0\n1\n' > "$T/f.csv"
printf 'x,y\n1,2\n3,nan\n' > "$T/nan.csv"
mkdir "$T/empty"
expect 0 "4 observations" "$K" data info "$T/t.csv"
expect 0 "kind" "$K" data info "$T/t.csv" --data-factors "$T/f.csv"
expect 0 "examples of one factor" "$K" data show "$T/t.csv" --data-factors "$T/f.csv" --out "$T/t.png"
expect 0 "random observations" "$K" data show "$T/t.csv" --out "$T/t2.png"
expect 2 "nan.csv:3" "$K" data info "$T/nan.csv"
expect 2 "no .png files" "$K" data show "$T/empty" --out "$T/e.png"
expect 1 "shapes has its own factors" "$K" data info shapes --data-factors "$T/f.csv"
printf 'x,y\n1,2\n3,4\n' > "$T/two.csv"
expect 2 "f.csv has 4 rows but the data has 2" "$K" data info "$T/two.csv" --data-factors "$T/f.csv"

# export
expect 0 "wrote" "$K" data export shapes --n 10 --seed 3 --out "$T/x.npy" --factors "$T/xf.npy" --values "$T/xv.npy"
[ "$(npy_shape "$T/x.npy")" = "10, 3, 64, 64" ] && ok || bad "x.npy shape $(npy_shape "$T/x.npy")"
[ "$(npy_shape "$T/xf.npy")" = "10, 6" ] && ok || bad "xf.npy shape $(npy_shape "$T/xf.npy")"
expect 0 "wrote" "$K" data export shapes --n 10 --seed 3 --out "$T/x8.npy" --dtype uint8
[ "$(stat -c %s "$T/x8.npy")" -lt "$(stat -c %s "$T/x.npy")" ] && ok || bad "uint8 export is not smaller"
expect 0 "4 observations" "$K" data export "$T/t.csv" --out "$T/tx.npy"
[ "$(npy_shape "$T/tx.npy")" = "4, 3" ] && ok || bad "tx.npy shape $(npy_shape "$T/tx.npy")"
expect 0 "" "$K" data export physics --n 100 --out "$T/px.npy" --values "$T/pv.npy"
[ "$(npy_shape "$T/pv.npy")" = "100, 3" ] && ok || bad "pv.npy shape $(npy_shape "$T/pv.npy")"
expect 1 "vectors, not images" "$K" data export physics --n 10 --dtype uint8 --out "$T/bad.npy"
expect 2 "no ground-truth factors" "$K" data export "$T/t.csv" --out "$T/a.npy" --factors "$T/b.npy"
expect 1 "--dtype" "$K" data export shapes --n 2 --dtype int7 --out "$T/bad.npy"
expect 1 "--out" "$K" data export shapes --n 2
ls "$T" | grep -q "tmp-" && bad "a temporary file was left" || ok
[ -e "$T/bad.npy" ] && bad "a failed export left its file" || ok

# a few training steps on each new kind of data
expect 0 "" "$K" train --data shapes --steps 2 --batch 4 --threads 2 --out "$T/run-shapes" --quiet
expect 0 "" "$K" train --data physics --factor-dist laplace --obs-dim 6 --steps 2 --batch 8 --hidden 16 --out "$T/run-phys" --quiet
expect 0 "" "$K" train --data "$T/t.csv" --steps 2 --batch 4 --hidden 8 --latents 2 --out "$T/run-csv" --quiet
for r in run-shapes run-phys run-csv; do [ -s "$T/$r/model.safetensors" ] && ok || bad "$r has no model.safetensors"; done

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
