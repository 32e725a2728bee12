#!/bin/sh
# physics.sh: the factors of a physical system (issue 13, docs/results.md "Independent factors
# of a physical system"): on the built-in `physics` data (three independent factors mixed
# linearly into 10 noisy channels; the seed draws the mixing matrix) with uniform, Laplace and
# Gaussian factors, 5 seeds each: FastICA (`knobs ica`), a plain VAE and a beta-TCVAE (MLP,
# 3 latents), each scored by MCC (mean |Pearson correlation|, Hungarian matching) against the
# true continuous factor values of 10,000 draws. Prints a markdown table.
#
#   sh bench/apps/physics.sh BUILD OUT
#
# Never part of make test. Environment: STEPS (20000), SEEDS ("0 1 2 3 4"), JOBS (2 runs at once,
# one thread each). A finished run (marked DIR.trained) is reused.
BUILD=${1:?BUILD}; OUT=${2:?OUT}
STEPS=${STEPS:-20000}; SEEDS=${SEEDS:-"0 1 2 3 4"}; JOBS=${JOBS:-2}
K=$BUILD/knobs
set -e
mkdir -p "$OUT"
one() { # dist model seed
  dist=$1; model=$2; seed=$3; dir="$OUT/$dist-$model-s$seed"
  case $model in
    ica) [ -f "$dir/ica.json" ] || "$K" ica --data physics --factor-dist "$dist" --k 3 --seed "$seed" --out "$dir" > /dev/null 2>&1
         /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mcc']['score'])" "$dir/ica.json" > "$dir.mcc" ;;
    *) flags="--model betavae --beta 1"; [ "$model" = tcvae ] && flags="--model tcvae"
       [ -f "$dir.trained" ] || { "$K" train --data physics --factor-dist "$dist" $flags --arch mlp --hidden 256 \
         --latents 3 --lr 1e-3 --steps "$STEPS" --seed "$seed" --threads 1 --quiet --out "$dir" --overwrite && touch "$dir.trained"; }
       "$K" encode --model "$dir" --n 10000 --seed 99 --out "$dir/codes.npy" --values "$dir/values.npy" 2>/dev/null
       "$K" metrics --codes "$dir/codes.npy" --factors "$dir/values.npy" --metrics mcc --json 2>/dev/null |
         /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['metrics']['mcc']['score'])" > "$dir.mcc" ;;
  esac
}
n=0
for dist in uniform laplace gauss; do
  for model in ica vae tcvae; do
    for seed in $SEEDS; do
      one "$dist" "$model" "$seed" &
      n=$((n + 1))
      [ $((n % JOBS)) = 0 ] && wait
    done
  done
done
wait
echo "| factors | model | MCC per seed ($SEEDS) | mean |"
echo "|---|---|---|---|"
for dist in uniform laplace gauss; do
  for model in ica vae tcvae; do
    vals=""; for seed in $SEEDS; do vals="$vals $(cat "$OUT/$dist-$model-s$seed.mcc")"; done
    echo "$vals" | /usr/bin/python3 -c "
import sys
v = [float(x) for x in sys.stdin.read().split()]
print('| %s | %s | %s | %.3f |' % (sys.argv[1], sys.argv[2], ' '.join('%.3f' % x for x in v), sum(v) / len(v)))" "$dist" "$model"
  done
done
