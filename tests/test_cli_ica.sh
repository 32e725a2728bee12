#!/bin/sh
# test_cli_ica.sh: `knobs ica` end to end, and `knobs metrics --metrics mcc,amari`: FastICA on the
# built-in physics (uniform factors recovered: MCC > 0.99, no warning; Gaussian factors: the
# near-Gaussian warning names the components), on a file (every row, in order; its factors),
# the six outputs (shapes, unit-variance sources, ica.json), non-convergence (a warning, exit 0),
# the Amari index with --mixing, the refusals (k > channels and an unknown flag: exit 1; NaN in a
# .npy or .csv data file, a --mixing of the wrong shape: exit 2, the problem named) with nothing
# written, and the metrics of continuous factors on ICA's sources.
# Usage: sh tests/test_cli_ica.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-ica-XXXXXX)
. "$(dirname "$0")/lib.sh"
# lacks PATTERN: the last command's output does not hold it
lacks() { if grep -q -- "$1" "$T/err" "$T/out"; then bad "output holds '$1': $(head -c 300 "$T/err")"; else ok; fi; }
npy_shape() { head -c 128 "$1" | LC_ALL=C tr -d '\000' | LC_ALL=C sed -n "s/.*'shape': (\([^)]*\)).*/\1/p"; }
# the number after PATTERN in the last output (first match), for comparisons with awk
num_after() { sed -n "s/.*$1 *\([0-9.eE+-]*\).*/\1/p" "$T/out" "$T/err" | head -1; }
above() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 > y + 0) }'; }

expect 0 "usage: knobs ica" "$K" ica --help
expect 0 "FastICA" "$K" help
expect 0 "--factor-dist" "$K" help ica

# physics, uniform factors: recovered, no warning
expect 0 "converged after" "$K" ica --data physics --k 3 --out "$T/u" --n 5000 --seed 1
m=$(num_after "MCC"); above "$m" 0.99 && ok || bad "MCC $m on uniform physics"
a=$(num_after "Amari index"); above 0.05 "$a" && ok || bad "Amari $a on uniform physics"
lacks "near-Gaussian"
lacks "warning"
for f in sources unmixing mixing mean kurtosis; do [ -s "$T/u/$f.npy" ] && ok || bad "no $f.npy"; done
[ "$(npy_shape "$T/u/sources.npy")" = "5000, 3" ] && ok || bad "sources shape $(npy_shape "$T/u/sources.npy")"
[ "$(npy_shape "$T/u/unmixing.npy")" = "3, 10" ] && ok || bad "unmixing shape $(npy_shape "$T/u/unmixing.npy")"
[ "$(npy_shape "$T/u/mixing.npy")" = "10, 3" ] && ok || bad "mixing shape $(npy_shape "$T/u/mixing.npy")"
[ "$(npy_shape "$T/u/mean.npy")" = "10," ] && ok || bad "mean shape $(npy_shape "$T/u/mean.npy")"
grep -q '"converged": true' "$T/u/ica.json" && grep -q '"mcc": {"score": 0.99' "$T/u/ica.json" &&
  grep -q '"near_gaussian": \[\]' "$T/u/ica.json" && ok || bad "ica.json: $(head -c 400 "$T/u/ica.json")"
ls "$T/u" | grep -q "tmp-" && bad "a temporary file was left" || ok
# the same seed, the same bytes
expect 0 "" "$K" ica --data physics --k 3 --out "$T/u2" --n 5000 --seed 1
cmp -s "$T/u/sources.npy" "$T/u2/sources.npy" && ok || bad "the same seed gave other sources"

# Laplace factors too; Gaussian ones: the warning names the components
expect 0 "MCC 0.99" "$K" ica --data physics --factor-dist laplace --k 3 --out "$T/l" --n 5000
# (20000 rows: the excess kurtosis of a Gaussian sample has sd sqrt(24/n), and ICA picks extremes)
expect 0 "components 0, 1 and 2 are near-Gaussian" "$K" ica --data physics --factor-dist gauss --k 3 --out "$T/g" --n 20000
expect 0 "not identifiable" "$K" ica --data physics --factor-dist gauss --k 3 --out "$T/g" --n 20000
grep -q '"near_gaussian": \[0, 1, 2\]' "$T/g/ica.json" && ok || bad "ica.json lacks the near-Gaussian list"

# not converged: a warning, the outputs still written
expect 0 "did not converge in 1 iterations" "$K" ica --data physics --k 3 --out "$T/nc" --n 2000 --max-iter 1
grep -q '"converged": false' "$T/nc/ica.json" && ok || bad "ica.json says converged"

# --mixing: the Amari index against a given mixing (its own pseudo-inverse: 0)
expect 0 "Amari index 0.0000" "$K" ica --data physics --k 3 --out "$T/u3" --n 5000 --seed 1 --mixing "$T/u/mixing.npy"
expect 2 "expected the true mixing A of shape (10, 3)" "$K" ica --data physics --k 3 --out "$T/bad1" --n 500 --mixing "$T/u/unmixing.npy"
[ -e "$T/bad1" ] && bad "a refused --mixing left its folder" || ok

# a file: every row in order, its factors
expect 0 "" "$K" data export physics --n 800 --seed 3 --out "$T/x.npy" --factors "$T/xf.npy"
expect 0 "MCC 0.9" "$K" ica --data "$T/x.npy" --data-factors "$T/xf.npy" --k 3 --out "$T/f"
[ "$(npy_shape "$T/f/sources.npy")" = "800, 3" ] && ok || bad "file sources shape $(npy_shape "$T/f/sources.npy")"
expect 0 "" "$K" ica --data "$T/x.npy" --k 2 --n 300 --out "$T/f2"
[ "$(npy_shape "$T/f2/sources.npy")" = "300, 2" ] && ok || bad "--n on a file: $(npy_shape "$T/f2/sources.npy")"

# refusals
expect 1 "physics has 10 channels" "$K" ica --data physics --k 11 --out "$T/bad2"
expect 1 "unknown option '--bogus'" "$K" ica --data physics --k 3 --out "$T/bad3" --bogus 1
expect 1 "--k K is required" "$K" ica --data physics --out "$T/bad4"
expect 1 "--out DIR is required" "$K" ica --data physics --k 3
expect 1 "--tol" "$K" ica --data physics --k 3 --out "$T/bad5" --tol -1
cp "$T/x.npy" "$T/nan.npy"
printf '\000\000\300\177' | dd of="$T/nan.npy" bs=1 seek=$((128 + (7 * 10 + 2) * 4)) conv=notrunc 2>/dev/null
expect 2 "observation 7 holds NaN" "$K" ica --data "$T/nan.npy" --k 3 --out "$T/bad6"
printf 'a,b,c\n1,2,3\n4,nan,6\n7,8,9\n' > "$T/nan.csv"
expect 2 "NaN" "$K" ica --data "$T/nan.csv" --k 2 --out "$T/bad7"
printf 'a,b,c\n1,2,3\n2,4,6\n3,6,9\n4,8,12\n' > "$T/rank1.csv"
expect 2 "rank 1, below the 2 components" "$K" ica --data "$T/rank1.csv" --k 2 --out "$T/bad8"
for b in bad2 bad3 bad4 bad5 bad6 bad7 bad8; do [ -e "$T/$b" ] && bad "refused run left $b"; done; ok
# all or nothing: ica.json cannot be written (a folder of that name) -> no .npy either
mkdir -p "$T/half/ica.json"
expect 2 "is a folder (nothing written)" "$K" ica --data physics --k 3 --out "$T/half" --n 500
[ -e "$T/half/sources.npy" ] && bad "sources.npy written beside a failed ica.json" || ok
ls "$T/half" | grep -q "tmp-" && bad "a temporary file was left" || ok
expect 2 "cannot create" "$K" ica --data physics --k 3 --out /nonexistent-dir/ica --n 500

# the metrics of continuous factors on ICA's sources (the same draw: export --seed 1 --n 5000)
expect 0 "" "$K" data export physics --n 5000 --seed 1 --out "$T/px.npy" --values "$T/pv.npy"
expect 0 "mcc_test" "$K" metrics --codes "$T/u/sources.npy" --factors "$T/pv.npy" --metrics mcc
m2=$(num_after "mcc  *mcc"); above "$m2" 0.99 && ok || bad "knobs metrics mcc $m2"
expect 0 "spearman" "$K" metrics --codes "$T/u/sources.npy" --factors "$T/pv.npy" --metrics mcc --mcc-spearman --json
expect 0 "amari_index" "$K" metrics --codes "$T/u/sources.npy" --factors "$T/pv.npy" --metrics mcc,amari \
  --amari-unmixing "$T/u/unmixing.npy" --amari-mixing "$T/u/mixing.npy"
expect 1 "amari needs the unmixing and the true mixing" "$K" metrics --codes "$T/u/sources.npy" --factors "$T/pv.npy" --metrics amari
expect 2 "mcc and amari alone take them" "$K" metrics --codes "$T/u/sources.npy" --factors "$T/pv.npy" --metrics mcc,mig

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
