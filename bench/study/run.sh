#!/bin/sh
# run.sh: a small version of the unsupervised study (Locatello et al. 2019) on the built-in
# dSprites: the six unsupervised models x 2 settings x 3 seeds (36 runs of the conv networks),
# a fixed budget of STEPS steps each, scored with knobs eval, then knobs report (table and
# plots) and knobs select --method udr (which run UDR picks without labels, and how UDR ranks
# agree with the supervised metrics). docs/results.md "A small unsupervised study" holds what
# it gave. Never part of make test; the sweep is resumable: re-run this script to continue.
#
#   sh bench/study/run.sh BUILD OUT
#
# Environment: STEPS (1000), JOBS (2 runs at once), THREADS (1 per run), SEEDS (0..2),
# EVAL (knobs eval flags: the metrics of the study with smaller samples than the reference's,
# so that an eval takes ~30 s instead of minutes).
BUILD=${1:?BUILD}; OUT=${2:?OUT}
K=$BUILD/knobs
STEPS=${STEPS:-1000}; JOBS=${JOBS:-2}; THREADS=${THREADS:-1}; SEEDS=${SEEDS:-0..2}
EVAL=${EVAL:-"--metrics beta_vae,factor_vae,mig,dci,sap,modularity --num-train 1000 --num-test 500 --num-eval 500 --num-variance 2000 --batch-size 16 --grid-cache off"}
# The settings: two of each model's values in the study's sweep (disentanglement_lib
# config/unsupervised_study_v1): beta 1 and 16; C 5 and 25 (capacity reached at half the
# budget, since the reference's 100,000 steps are out of reach); TC weight 1 and 6; gamma
# 10 and 100; lambda_od 1 and 10 for DIP-VAE-I and -II.
HALF=$((STEPS / 2))
GRID="model=betavae; beta=1,16; seed=$SEEDS | model=annealedvae; capacity=5,25; capacity_steps=$HALF; seed=$SEEDS"
GRID="$GRID | model=tcvae; tcvae_beta=1,6; seed=$SEEDS | model=factorvae; factorvae_gamma=10,100; seed=$SEEDS"
GRID="$GRID | model=dipvae1; lambda_od=1,10; seed=$SEEDS | model=dipvae2; lambda_od=1,10; seed=$SEEDS"
set -e
"$K" sweep --grid "$GRID" --data dsprites --steps "$STEPS" --jobs "$JOBS" --threads "$THREADS" --eval "$EVAL" \
  --out "$OUT/sweep"
"$K" report "$OUT/sweep" --out "$OUT/report"
"$K" select "$OUT/sweep" --method udr --out "$OUT/select.json"
