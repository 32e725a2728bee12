#!/bin/sh
# test_cli_edit.sh: `knobs name`, `knobs edit` and `knobs design` (issue 12) on a tiny dSprites
# run: every flag once, and the bad inputs the issue names (an unknown knob name, a value that
# is not a number, an image of the wrong size, --factor on a model whose data has no factors),
# each with its exit code and message, nothing written on a refusal.
# Usage: sh tests/test_cli_edit.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-edit-XXXXXX)
. "$(dirname "$0")/lib.sh"
absent() { [ -e "$1" ] && bad "$1 was left behind" || ok; }

R=$T/run
expect 0 "" "$K" train --arch mlp --hidden 32 --latents 4 --batch 16 --steps 30 --threads 1 --quiet --out "$R"
# name
expect 0 "wrote knobs.json" "$K" name "$R" --n 500 --threads 1
[ -f "$R/knobs.json" ] && grep -q '"version":	2' "$R/knobs.json" && ok || bad "no knobs.json v2"
expect 0 "wobble" "$K" name "$R" --set 2=wobble
expect 0 "wobble" "$K" name "$R" --show
expect 1 "unknown knob" "$K" name "$R" --set nosuch=x
expect 1 "reads as a latent number" "$K" name "$R" --set 1=7
expect 1 "expected Z=NAME" "$K" name "$R" --set 1
expect 0 "wobble" "$K" info "$R"
# edit
expect 0 "wrote" "$K" edit --model "$R" --index 5 --set wobble=1.5 --add 0=-0.5 --out "$T/e.png"
[ -s "$T/e.png" ] && ok || bad "no edit.png"
expect 0 "3 rows" "$K" edit --model "$R" --indices 10:13 --set 1=2 --out "$T/e3.png"
expect 0 "4 rows" "$K" edit --model "$R" --indices 0,7,10:12 --set 1=2 --out "$T/e4.png"
expect 1 "expected a comma list" "$K" edit --model "$R" --indices 1,,2 --set 1=0 --out "$T/x.png"
expect 1 "unknown knob \"nosuch\"" "$K" edit --model "$R" --set nosuch=1 --out "$T/x.png"
expect 1 "not a finite number" "$K" edit --model "$R" --set 1=abc --out "$T/x.png"
expect 1 "expected KNOB=VALUE" "$K" edit --model "$R" --set 1= --out "$T/x.png"
expect 1 "nothing to edit" "$K" edit --model "$R" --out "$T/x.png"
expect 1 "go together" "$K" edit --model "$R" --factor posX --out "$T/x.png"
expect 1 "expected a comma list" "$K" edit --model "$R" --indices 5:2 --set 1=0 --out "$T/x.png"
expect 1 "out of range" "$K" edit --model "$R" --index 999999999 --set 1=0 --out "$T/x.png"
# an image of the wrong size, and of the wrong channel count
"$K" data show dsprites --out "$T/big.png" >/dev/null 2>&1
expect 1 "the model takes 64x64" "$K" edit --model "$R" --image "$T/big.png" --set 1=0 --out "$T/x.png"
absent "$T/x.png"
# labels for the attribute edit: 0/1 of the first rows (a .npy written by the library)
"$K" encode --model "$R" --data dsprites --n 40 --out "$T/c.npy" --factors "$T/f.npy" >/dev/null 2>&1
labels() { # (40,) int64 labels 0,1,0,1,... as a .npy (format 1.0, header padded to 128 bytes)
  d="{'descr': '<i8', 'fortran_order': False, 'shape': (40,), }"
  { printf '\223NUMPY\001\000v\000%s' "$d"; printf '%*s\n' $((117 - ${#d})) ''; i=0
    while [ $i -lt 40 ]; do printf "\\$((i % 2))\000\000\000\000\000\000\000"; i=$((i + 1)); done; } > "$1"
}
labels "$T/lab.npy"
expect 0 "attribute 'odd'" "$K" edit --model "$R" --index 3 --attribute "$T/lab.npy" --name odd --amount 2 --out "$T/a.png"
# --score: the oracle of the built-in dSprites
expect 0 "fidelity" "$K" edit --model "$R" --score --n 8 --json "$T/s.json"
grep -q '"knobs"' "$T/s.json" && ok || bad "no score json"
expect 1 "goes with --score" "$K" edit --model "$R" --json "$T/y.json" --set 1=0 --out "$T/y.png"
absent "$T/y.json"
# design
expect 0 "valid" "$K" design --model "$R" --maximize area --penalty gmm --gmm-k 3 --n 2 --restarts 4 --steps 5 --n-fit 200 --out "$T/d.png" --json "$T/d.json"
[ -s "$T/d.png" ] && grep -q '"designs"' "$T/d.json" && ok || bad "no design outputs"
expect 0 "valid" "$K" design --model "$R" --property cy --target 0.3 --penalty box --n 2 --restarts 2 --steps 3 --n-fit 200 --out "$T/d2.png"
expect 1 "one of --maximize" "$K" design --model "$R" --out "$T/z.png"
expect 1 "go together" "$K" design --model "$R" --property area --out "$T/z.png"
expect 1 "expected none, prior, gmm or box" "$K" design --model "$R" --maximize area --penalty huh --out "$T/z.png"
expect 1 "not an image property" "$K" design --model "$R" --maximize nosuch --out "$T/z.png"
expect 1 "at least --n" "$K" design --model "$R" --maximize area --n 8 --restarts 4 --out "$T/z.png"
absent "$T/z.png"
# design fit: a head on codes and labels
expect 0 "held-out" "$K" design fit --codes "$T/c.npy" --labels "$T/lab.npy" --logistic --steps 50 --out "$T/h.safetensors"
expect 0 "valid" "$K" design --model "$R" --maximize "$T/h.safetensors" --n 2 --restarts 2 --steps 3 --n-fit 200 --out "$T/d3.png"
expect 1 "match the codes" "$K" design fit --codes "$T/c.npy" --labels "$T/f.npy" --out "$T/h2.safetensors"
absent "$T/h2.safetensors"
# --factor on a model whose data have no ground-truth factors
"$K" encode --model "$R" --data dsprites --n 30 --out "$T/c30.npy" >/dev/null 2>&1
"$K" data export dsprites --n 30 --out "$T/x30.npy" >/dev/null 2>&1
if [ -s "$T/x30.npy" ]; then
  expect 0 "" "$K" train --arch mlp --hidden 16 --latents 3 --batch 8 --steps 5 --threads 1 --quiet --data "$T/x30.npy" --out "$T/nof"
  expect 1 "no knobs.json" "$K" edit --model "$T/nof" --index 0 --factor posX --to 0.5 --out "$T/nf.png"
  expect 2 "no ground-truth factors" "$K" name "$T/nof"
  absent "$T/nf.png"
else
  bad "data export failed: $(cat "$T/err")"
fi
rm -rf "$T"
echo "$P passed, $F failed"
[ "$F" = 0 ]
