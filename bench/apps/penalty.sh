#!/bin/sh
# penalty.sh: the training-time property penalty of issue 12 (docs/results.md, "Property
# penalty"), on the built-in dSprites. "Unwanted" items are large sprites (scale index 4 or 5
# of 0..5, a third of the data).
#
#   sh bench/apps/penalty.sh BUILD OUT
#
# 1. a plain VAE (beta 1, lr 1e-3, STEPS0 steps) is the base model;
# 2. a logistic property head is fitted on the base model's codes of 20,000 observations,
#    labelled large or not from the ground truth (bench_prior labels);
# 3. the base model is fine-tuned for STEPS1 more steps (knobs train --init) with the penalty
#    at each weight in WEIGHTS, weight 0 being the control (the same fine-tuning without it);
# 4. for the base and each fine-tuned model, N codes z ~ N(0, I) are decoded and the share of
#    large sprites (read by the oracle), of images above the data's 67th area percentile and
#    of near-empty ones (below the smallest real area), and the mean distance to the nearest
#    rendering are printed (bench_prior share), with the loss terms of the last log row.
# Never part of make test. Environment: STEPS0 (5000), STEPS1 (1500), WEIGHTS ("0 2 10 50"),
# N (2000), THREADS (2). A run folder that is already complete is reused.
BUILD=${1:?BUILD}; OUT=${2:?OUT}
STEPS0=${STEPS0:-5000}; STEPS1=${STEPS1:-1500}; WEIGHTS=${WEIGHTS:-"0 2 10 50"}; N=${N:-2000}; THREADS=${THREADS:-2}
K=$BUILD/knobs; P=$BUILD/bench/bench_prior
set -e
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
done_run() { [ -f "$1/model.safetensors" ] && grep -q "\"steps\":	$2," "$1/config.json" 2>/dev/null; }
train() { # folder steps flags...
  dir=$1; steps=$2; shift 2
  if [ -f "$dir/model.safetensors" ]; then
    "$K" train --resume "$dir" --steps "$steps" --quiet
  else
    "$K" train --model betavae --beta 1 --lr 1e-3 --steps "$steps" --threads "$THREADS" --ckpt-every 1000 \
      --quiet --out "$dir" "$@"
  fi
}
t0=$(date +%s)
train "$OUT/base" "$STEPS0"
echo "base: $(( $(date +%s) - t0 )) s"
[ -f "$OUT/head.safetensors" ] || {
  "$P" labels "$OUT/base" 20000 "$OUT/codes.npy" "$OUT/labels.npy"
  "$K" design fit --codes "$OUT/codes.npy" --labels "$OUT/labels.npy" --logistic --out "$OUT/head.safetensors" \
    > "$OUT/head.txt"
}
cat "$OUT/head.txt"
for w in $WEIGHTS; do
  t0=$(date +%s)
  train "$OUT/ft_$w" "$STEPS1" --init "$OUT/base" --seed 1 --property-penalty "$OUT/head.safetensors" --property-weight "$w"
  echo "ft_$w: $(( $(date +%s) - t0 )) s"
done
echo
echo "| model | steps | prior samples read as large (oracle) | share over the data's p67 area | mean area | near-empty | nearest distance | recon | kl |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in base $(for w in $WEIGHTS; do echo ft_$w; done); do
  j=$("$P" share "$OUT/$r" "$N" 7)
  echo "$j" > "$OUT/$r.share.json"
  last=$(tail -n 1 "$OUT/$r/log.csv")
  hdr=$(head -n 1 "$OUT/$r/log.csv")
  echo "$j|$hdr|$last" | /usr/bin/python3 -c '
import json, sys
j, hdr, last = sys.stdin.read().strip().split("|")
d = json.loads(j); row = dict(zip(hdr.split(","), last.split(",")))
name, steps = sys.argv[1], row.get("step", "?")
print("| %s | %s | %.1f%% | %.1f%% | %.4f | %.1f%% | %.4f | %.1f | %.1f |" % (name, steps, 100 * d["large_share"],
      100 * d["over_p67_share"], d["mean_area"], 100 * d["below_data_min_share"], d["mean_nearest"],
      float(row.get("recon", "nan")), float(row.get("kl", "nan"))))' "$r"
done
