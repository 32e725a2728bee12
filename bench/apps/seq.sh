#!/bin/sh
# seq.sh: issue 14's table (docs/results.md "Sequences"): a dsvae on `dsprites:seq` (T = 8
# frames of 64x64) trained for MINUTES of wall clock on THREADS threads, and the baseline
# without a static code: a plain per-frame VAE (betavae, beta 1, 10 latents) trained on the
# built-in dSprites frames for BASE_MINUTES; both scored by `knobs swap --score` on N pairs
# (the dSprites oracle reads every swapped frame; docs/apps.md "Sequences: knobs swap"; the
# baseline's static code is its latents most constant within sequences), and the swap picture
# and GIF of the dsvae. Prints a markdown table.
#
#   sh bench/apps/seq.sh BUILD OUT
#
# Never part of make test. Environment: MINUTES (60), BASE_MINUTES (20), THREADS (2), N (500),
# STEPS / BASE_STEPS (train to a step count instead of a time: the steps a timed run reached
# are in its log.csv), SEED (1). A run is stopped by SIGINT at its time, which writes its
# checkpoint (knobs train's Ctrl-C). A finished run (DIR.trained) is reused.
BUILD=${1:?BUILD}; OUT=${2:?OUT}
MINUTES=${MINUTES:-60}; BASE_MINUTES=${BASE_MINUTES:-20}; THREADS=${THREADS:-2}; N=${N:-500}; SEED=${SEED:-1}
K=$BUILD/knobs
set -e
mkdir -p "$OUT"
# train DIR MINUTES STEPS ARGS...: knobs train for MINUTES (or to STEPS if set), once
train() {
  dir=$1; min=$2; steps=$3; shift 3
  [ -f "$dir.trained" ] && return 0
  if [ -n "$steps" ]; then
    "$K" train "$@" --steps "$steps" --threads "$THREADS" --seed "$SEED" --out "$dir" > "$dir.log" 2>&1
  else
    timeout -s INT "$((min * 60))" "$K" train "$@" --steps 10000000 --threads "$THREADS" --seed "$SEED" \
      --out "$dir" > "$dir.log" 2>&1 || [ $? = 124 ]
  fi
  touch "$dir.trained"
}
train "$OUT/dsvae" "$MINUTES" "$STEPS" --model dsvae --variant factorised --data dsprites:seq --latents 3 --f-dim 8 \
  --rnn-hidden 64 --batch 16 --lr 5e-4 --ckpt-every 2000 --log-every 200
train "$OUT/vae" "$BASE_MINUTES" "$BASE_STEPS" --model betavae --beta 1 --data dsprites --latents 10 --batch 64 \
  --lr 1e-3 --ckpt-every 5000 --log-every 500
for r in dsvae vae; do
  [ -f "$OUT/$r-score.json" ] || "$K" swap --model "$OUT/$r" --data dsprites:seq --score --n "$N" --seed "$SEED" \
    --out "$OUT/$r-score.json" > "$OUT/$r-score.txt"
done
"$K" swap --model "$OUT/dsvae" --pairs 4 --seed "$SEED" --out "$OUT/swap.png" 2>/dev/null
"$K" swap --model "$OUT/dsvae" --pairs 4 --seed "$SEED" --out "$OUT/swap.gif" 2>/dev/null
# steps and seconds of a run: its last log row
last() { tail -n 1 "$1/log.csv" | cut -d, -f1,2 | tr , ' '; }
val() { sed -n "s/.*\"$2\": \([^,]*\),*$/\1/p" "$1" | head -n 1; }
pct() { awk -v v="$1" 'BEGIN { if (v == "null") print "-"; else printf "%.1f %%", 100 * v }'; }
echo "| model | steps | train s | static (seq) | static (frames) | shape (seq) | dynamic (1 step) | dynamic (3 steps) | generation | recon static (seq) / dynamic |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for r in dsvae vae; do
  j="$OUT/$r-score.json"; set -- $(last "$OUT/$r")
  echo "| $r | $1 | $2 | $(pct "$(val "$j" static_accuracy_sequence)") | $(pct "$(val "$j" static_accuracy)") |" \
    "$(pct "$(val "$j" shape_accuracy_sequence)") | $(pct "$(val "$j" dynamic_accuracy)") |" \
    "$(pct "$(val "$j" dynamic_accuracy_3)") | $(pct "$(val "$j" generation_static_accuracy)") |" \
    "$(pct "$(val "$j" reconstruction_static_accuracy_sequence)") / $(pct "$(val "$j" reconstruction_dynamic_accuracy)") |"
done
