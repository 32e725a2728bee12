#!/bin/sh
# e2e.sh: the two whole-command figures of issue 10, run by bench/run.sh (section 7).
# 1. `knobs train` end to end: the default conv beta-VAE on the built-in dSprites, STEPS (1500)
#    steps of batch 64 on THREADS threads at lr 1e-3, rendering, logging, the final checkpoint and
#    pictures included; its log rows' images/s (the first row, which holds start-up, left out)
#    and the whole command's, against the bare step (bench_train conv 64 THREADS 60) run right
#    after it.
# 2. `knobs eval` with every metric at the reference defaults on the model it trained: the first
#    eval builds the grid code table beside the checkpoint, the second reads it; wall seconds of
#    each, the slowest metrics, and whether both gave the same scores.
# Usage: sh bench/e2e.sh BUILD THREADS DIR (DIR: bench/run.sh's scratch folder; the figures are
# appended to DIR/figs as NAME=VALUE for bench/targets.sh). Environment: KNOBS_BENCH_E2E_STEPS.
BUILD=${1:-build}
THREADS=${2:-2}
DIR=${3:-$(mktemp -d /tmp/knobs-e2e-XXXXXX)}
STEPS=${KNOBS_BENCH_E2E_STEPS:-1500}
K="$BUILD/knobs"
PY=/usr/bin/python3
field() { echo "$1" | sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p"; }
fig() { echo "$1=$2" >> "$DIR/figs"; }
now() { date +%s.%N; }
rm -rf "$DIR/run"

echo "## knobs train end to end: conv beta-VAE, built-in dSprites, $STEPS steps of batch 64, $THREADS threads"
t0=$(now)
"$K" train --steps "$STEPS" --threads "$THREADS" --lr 1e-3 --log-every 100 --quiet --out "$DIR/run" ||
  { echo "knobs train failed"; exit 0; }
t1=$(now)
rows=$(awk -F, 'NR > 2 { s += $3; n++ } END { if (n) printf "%.1f", s / n }' "$DIR/run/log.csv")
whole=$(awk "BEGIN{printf \"%.1f\", $STEPS * 64 / ($t1 - $t0)}")
bare=$(field "$("$BUILD/bench/bench_train" conv 64 "$THREADS" 60)" images_per_s)
printf '%-44s %10s\n' "what" "img/s"
printf '%-44s %10s\n' "knobs train, mean of its log rows" "$rows"
printf '%-44s %10s\n' "knobs train, whole command ($(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s)" "$whole"
printf '%-44s %10s\n' "bare step (bench_train conv 64 $THREADS 60)" "$bare"
[ -n "$rows" ] && [ -n "$bare" ] && awk "BEGIN{printf \"log rows / bare step: %.1f %%; whole command / bare step: %.1f %%\n\", 100 * $rows / $bare, 100 * $whole / $bare}"
fig e2e_rows "$rows"; fig e2e_whole "$whole"; fig e2e_bare "$bare"

echo
echo "## knobs eval, every metric at the reference defaults, on that model, $THREADS threads (seconds; lower is better)"
t0=$(now)
"$K" eval --model "$DIR/run" --threads "$THREADS" --quiet --out "$DIR/eval1.json" || { echo "knobs eval failed"; exit 0; }
t1=$(now)
"$K" eval --model "$DIR/run" --threads "$THREADS" --quiet --out "$DIR/eval2.json" || { echo "knobs eval failed"; exit 0; }
t2=$(now)
first=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}"); later=$(awk "BEGIN{printf \"%.1f\", $t2 - $t1}")
echo "first eval (encodes every grid point once, writes the table): $first s"
echo "later eval (reads the table): $later s"
fig eval_first "$first"; fig eval_later "$later"
if [ -x "$PY" ]; then
  $PY - "$DIR/eval1.json" "$DIR/eval2.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["metrics"] for p in sys.argv[1:3])
print("seconds per metric (first eval / later eval), slowest first:")
for m in sorted(a, key=lambda m: -a[m].get("seconds", 0)):
    print("  %-14s %8.2f %8.2f" % (m, a[m].get("seconds", 0), b.get(m, {}).get("seconds", 0)))
drop = ("seconds", "images_per_second")
same = all({k: v for k, v in a[m].items() if k not in drop} == {k: v for k, v in b.get(m, {}).items() if k not in drop} for m in a)
print("scores of the two evals: %s" % ("identical" if same else "DIFFERENT"))
PYEOF
fi
