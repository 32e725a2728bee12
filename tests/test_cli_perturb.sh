#!/bin/sh
# test_cli_perturb.sh: `knobs perturb` end to end on a tiny nb model trained here (200 steps of
# an MLP with hidden 64 on counts:genes=200,cells=2000,holdout=type1): pred.npz (its members),
# the JSON report (beside --out, or --report; --json prints it), --delta delta.npy, the same
# bytes twice, and the refusals with nothing written: no --hold-out, an unknown class or factor,
# the training set as the truth (no stim cells of the held-out type), log1p data, --out not .npz.
# Usage: sh tests/test_cli_perturb.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-perturb-XXXXXX)
. "$(dirname "$0")/lib.sh"
absent() { [ ! -e "$1" ] && ok || bad "$1 was written after a failure"; }
D="counts:genes=200,cells=2000"
expect 0 "" "$K" train --model betavae --beta 1 --data "$D,holdout=type1" --likelihood nb --hidden 64 --latents 6 \
  --steps 200 --batch 64 --lr 1e-3 --threads 1 --out "$T/run"
expect 0 "mean shift in genes" "$K" perturb --model "$T/run" --data "$D" --label condition --control ctrl --stim stim \
  --celltype-col celltype --hold-out type1 --out "$T/pred.npz" --delta "$T/delta.npy"
for f in pred.npz pred.json delta.npy; do [ -s "$T/$f" ] && ok || bad "$f missing"; done
for m in pred.npy truth.npy ctrl.npy shift.npy delta.npy top_de.npy; do
  unzip -l "$T/pred.npz" 2>/dev/null | grep -q " $m\$" && ok || bad "pred.npz lacks $m"
done
grep -q '"r2_top"' "$T/pred.json" && grep -q '"mean_shift"' "$T/pred.json" && ok || bad "pred.json lacks the scores"
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); assert len(j["delta"]) == 6 and 0 <= j["scores"]["model"]["r2_all"] <= 1' \
    "$T/pred.json" 2>"$T/jerr" && ok || bad "pred.json: $(cat "$T/jerr")"
else
  S=$((S + 1)); echo "skip: JSON syntax of pred.json: no python3"
fi
expect 0 '"scores"' "$K" perturb --model "$T/run" --data "$D" --hold-out type1 --out "$T/b.npz" --report "$T/b-report.json" --json
cmp -s "$T/pred.npz" "$T/b.npz" && ok || bad "two runs gave different pred.npz"
[ -s "$T/b-report.json" ] && ok || bad "--report not written"
# refusals, nothing written
expect 1 "--hold-out" "$K" perturb --model "$T/run" --data "$D" --out "$T/x.npz"
expect 1 "no class 'typeX'" "$K" perturb --model "$T/run" --data "$D" --hold-out typeX --out "$T/x.npz"
expect 1 "no label factor 'cond'" "$K" perturb --model "$T/run" --data "$D" --label cond --hold-out type1 --out "$T/x.npz"
expect 1 "no stim cells of the held-out type" "$K" perturb --model "$T/run" --hold-out type1 --out "$T/x.npz"
expect 2 "not raw counts" "$K" perturb --model "$T/run" --data "$D,log1p" --hold-out type1 --out "$T/x.npz"
expect 1 ".npz" "$K" perturb --model "$T/run" --data "$D" --hold-out type1 --out "$T/x.npy"
absent "$T/x.npz"; absent "$T/x.json"
rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
