#!/bin/sh
# test_cli_grid.sh: `knobs eval --grid-cache` on a run trained on a small grid file dataset
# (4 x 5 x 6 images of 8x8 written with NumPy; skipped without python3-numpy): "auto" does not
# build a table for fewer draws than grid points, "on" encodes the grid once and saves the
# table beside the checkpoint, a second eval reads it and gives the same scores, "off" leaves
# it alone; bad
# values and --representation sampled with "on" are usage errors; a damaged table is a runtime
# error naming the file. Usage: sh tests/test_cli_grid.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-cli-grid-XXXXXX)
. "$(dirname "$0")/lib.sh"
if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  echo "skip: python3-numpy not installed (it writes the grid dataset)"
  echo "0 passed, 0 failed, 1 skipped"
  rm -rf "$T"
  exit 0
fi
/usr/bin/python3 - "$T" <<'EOF'
import numpy as np, sys
t = sys.argv[1]
a, b, c = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
f = np.stack([a.ravel(), b.ravel(), c.ravel()], 1).astype(np.int32)
x = np.zeros((len(f), 1, 8, 8), np.float32)
for i, (p, q, r) in enumerate(f):
    x[i, 0, 1 + p, : q + 3] = 0.3 + 0.12 * r
np.save(t + "/x.npy", x)
np.save(t + "/f.npy", f)
EOF
R="$T/run"
expect 0 "" "$K" train --data "$T/x.npy" --data-factors "$T/f.npy" --arch mlp --hidden 16 --latents 3 --batch 8 \
  --steps 30 --threads 1 --out "$R" --quiet
SMALL="--num-train 100 --num-test 50 --num-eval 20 --batch-size 4 --num-variance 100 --intervention-n 50 --intervention-scale-n 50 --mig-sampled-samples 200 --elbo-points 20 --gbt-stages 3"
# auto: 60 draws of a 120-point grid encode on the fly; the protocol below (over 120) builds
expect 0 "" "$K" eval --model "$R" --metrics mig --num-train 50 --num-test 10 --out "$T/auto.json"
ls "$R"/grid_codes-* >/dev/null 2>&1 && bad "auto built a table for 60 draws of a 120-point grid" || ok
expect 0 "points encoded" "$K" eval --model "$R" $SMALL --metrics beta_vae,mig,mig_sampled --grid-cache on --out "$T/on1.json"
G=$(ls "$R"/grid_codes-x.npy-*.npy 2>/dev/null | head -1)
[ -n "$G" ] && [ -s "$G" ] && ok || bad "no table beside the checkpoint: $(ls "$R")"
expect 0 "read" "$K" eval --model "$R" $SMALL --metrics beta_vae,mig,mig_sampled --grid-cache on --out "$T/on2.json"
# the same table, the same numbers (the JSON differs only in seconds)
strip() { sed 's/"[a-z_]*seconds[a-z_]*": *[0-9.e+-]*,\{0,1\}//g; s/"images_per_second": *[0-9.e+-]*,\{0,1\}//g' "$1"; }
[ "$(strip "$T/on1.json" | grep -o '"score": *[0-9.e+-]*')" = "$(strip "$T/on2.json" | grep -o '"score": *[0-9.e+-]*')" ] && ok \
  || bad "the read table gave other scores: $(grep -o '"score": *[0-9.e+-]*' "$T/on1.json" "$T/on2.json")"
grep -q '"grid_codes"' "$T/on2.json" && ok || bad "the result does not say it used the table"
expect 0 "" "$K" eval --model "$R" $SMALL --metrics mig --grid-cache off --out "$T/off.json"
grep -q '"grid_codes"' "$T/off.json" && bad "--grid-cache off used the table" || ok
expect 1 "not auto, on or off" "$K" eval --model "$R" --grid-cache maybe
expect 1 "needs --representation mean" "$K" eval --model "$R" --representation sampled --grid-cache on
# a damaged table: refused naming it, and no result written
head -c 200 "$G" > "$T/cut" && cp "$T/cut" "$G"
expect 2 "grid_codes-" "$K" eval --model "$R" $SMALL --metrics mig --grid-cache on --out "$T/bad.json"
[ -e "$T/bad.json" ] && bad "a failed eval wrote its result" || ok
rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
