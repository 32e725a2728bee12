#!/bin/sh
# run.sh: the quality benchmark (issue 4). Builds bench/quality/quality.c against BUILD's
# library, measures every model's training speed at batch 64, trains each model on the built-in
# dSprites for MINUTES of wall time with SEED on THREADS threads, scores it (MIG, DCI
# disentanglement, FactorVAE score, BetaVAE score) and writes OUT/results.md from the results.
#
#   sh bench/quality/run.sh [BUILD]          environment: MINUTES (15), SEED (0), THREADS (2),
#                                            MODELS (all below), OUT (bench/quality/out), LR (unset:
#                                            each model's default; set: Adam lr of the VAE and of
#                                            FactorVAE's discriminator, InfoGAN keeps its own),
#                                            BUILD_ONLY (set: compile OUT/quality and stop)
# Never part of make test. Each run leaves OUT/<name>/{model.safetensors,result.json,log}.
BUILD=${1:-build}
MINUTES=${MINUTES:-15}
SEED=${SEED:-0}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/quality/out}
PY=/usr/bin/python3
# name:model:extra config (key=value, comma separated)
ALL="vae:betavae:beta=1 betavae:betavae:beta=4 tcvae:tcvae: factorvae:factorvae: dipvae1:dipvae1: dipvae2:dipvae2:
infogan:infogan: gvae:gvae: mlvae:mlvae: adagvae:adagvae: adamlvae:adamlvae:"
MODELS=${MODELS:-$(for r in $ALL; do echo "$r" | cut -d: -f1; done)}
set -e
[ -f "$BUILD/libknobs.a" ] || make --no-print-directory BUILD="$BUILD" "$BUILD/libknobs.a"
# BUILD/.flags: "cc CFLAGS | shared-library flags | LDLIBS | MPI | PLPLOT" (the Makefile)
CFLAGS=$(cut -d'|' -f1 "$BUILD/.flags" | cut -d' ' -f2-)
LDLIBS=$(cut -d'|' -f3 "$BUILD/.flags")
mkdir -p "$OUT"
cc $CFLAGS -o "$OUT/quality" bench/quality/quality.c "$BUILD/libknobs.a" $EXTRA_OBJ $LDLIBS
[ -z "$BUILD_ONLY" ] || exit 0 # tests/test_bench_build.sh: the program compiles, nothing runs
set +e
for name in $MODELS; do
  row=$(for r in $ALL; do echo "$r"; done | grep "^$name:")
  [ -n "$row" ] || { echo "unknown model $name"; exit 1; }
  model=$(echo "$row" | cut -d: -f2)
  extra=$(echo "$row" | cut -d: -f3 | tr ',' ' ')
  [ -z "$LR" ] || [ "$model" = infogan ] || extra="$extra lr=$LR"
  [ -z "$LR" ] || [ "$model" != factorvae ] || extra="$extra disc_lr=$LR"
  echo "== $name ($model $extra): speed"
  "$OUT/quality" speed "$model" 64 "$THREADS" 20 $extra > "$OUT/$name.speed.json" || echo "speed failed"
  cat "$OUT/$name.speed.json"
  echo "== $name: $MINUTES min of training, seed $SEED, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$OUT/quality" run "$model" "$OUT/$name" $((MINUTES * 60)) "$SEED" "$THREADS" $extra > "$OUT/$name.log" 2>&1 ||
    { echo "$name failed:"; tail -5 "$OUT/$name.log"; }
  echo "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/$name/loadavg" 2>/dev/null
done
# the report goes beside the runs: docs/results.md holds far more than this table (issues 12-15)
$PY bench/quality/report.py "$OUT" "$MINUTES" "$SEED" "$THREADS" > "$OUT/results.md.tmp" && mv "$OUT/results.md.tmp" "$OUT/results.md"
echo "wrote $OUT/results.md (the first table of docs/results.md, and its notes)"
