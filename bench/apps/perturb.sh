#!/bin/sh
# perturb.sh: in-silico perturbation on the built-in counts (issue 13 part 3; docs/results.md,
# "In-silico perturbation of cells"). Three models, each a betavae with beta 1, mlp (hidden
# HIDDEN, 10 latents), trained on counts:holdout=type1 (the default population, 1000 genes x
# 10,000 cells, 4 cell types, without type1's stim cells: ~1,250 cells never seen), then
# `knobs perturb` on the whole population predicts type1's stim cells from its control cells:
#   nb    --likelihood nb on the raw counts
#   zinb  --likelihood zinb on the raw counts
#   gauss --likelihood gaussian on counts:holdout=type1,log1p (scGen's setting: log data)
#   nb-b005  as nb with beta 0.05 (a weaker KL keeps more in the code; scGen weights its KL
#         small too)
# and prints one table: R^2 (squared Pearson) and CoD on all genes and the top 100 DE genes for
# each model and the two baselines (the same for every row: they use no model).
#
#   sh bench/apps/perturb.sh BUILD OUT
#
# Never part of make test. Environment: STEPS (4000), BATCH (128), LR (3e-3), HIDDEN (128),
# SEED (0). nb and zinb train at the same time (one thread each), then gauss and nb-b005: about
# 20 minutes on a 2-core machine shared with other work. A complete run folder is reused.
BUILD=${1:?BUILD}; OUT=${2:?OUT}
STEPS=${STEPS:-4000}; BATCH=${BATCH:-128}; LR=${LR:-3e-3}; HIDDEN=${HIDDEN:-128}; SEED=${SEED:-0}
K=$BUILD/knobs
set -e
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
train() { # name likelihood data [beta]
  [ -f "$OUT/$1/model.safetensors" ] && return 0
  "$K" train --model betavae --beta "${4:-1}" --likelihood "$2" --data "$3" --hidden "$HIDDEN" --latents 10 \
    --steps "$STEPS" --batch "$BATCH" --lr "$LR" --seed "$SEED" --threads 1 --ckpt-every 0 --quiet --out "$OUT/$1"
}
t0=$(date +%s)
train nb nb counts:holdout=type1 &
p1=$!
train zinb zinb counts:holdout=type1 &
p2=$!
wait $p1; wait $p2
train gauss gaussian counts:holdout=type1,log1p &
p1=$!
train nb-b005 nb counts:holdout=type1 0.05 &
p2=$!
wait $p1; wait $p2
echo "training: $(( $(date +%s) - t0 )) s"
for m in nb zinb gauss nb-b005; do
  "$K" perturb --model "$OUT/$m" --data counts --label condition --control ctrl --stim stim --celltype-col celltype \
    --hold-out type1 --out "$OUT/$m.npz" --delta "$OUT/$m-delta.npy" > "$OUT/$m.txt" 2>/dev/null
done
echo "total: $(( $(date +%s) - t0 )) s"
printf '| %-34s | %7s | %7s | %7s | %7s |\n' "prediction of type1 stim" "R2 all" "R2 top" "CoD all" "CoD top"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------------" "---------" "---------" "---------" "---------"
row() { # label file line
  awk -v l="$1" -v p="$3" 'index($0, p) == 3 { printf "| %-34s | %7.4f | %7.4f | %7.4f | %7.4f |\n", l, $(NF-3), $(NF-2), $(NF-1), $NF }' "$2"
}
row "betavae nb (latent arithmetic)" "$OUT/nb.txt" "model"
row "betavae zinb (latent arithmetic)" "$OUT/zinb.txt" "model"
row "betavae gaussian on log1p (l. a.)" "$OUT/gauss.txt" "model"
row "betavae nb, beta 0.05 (l. a.)" "$OUT/nb-b005.txt" "model"
row "no change (type1 control mean)" "$OUT/nb.txt" "no change"
row "mean shift in gene space" "$OUT/nb.txt" "mean shift"
