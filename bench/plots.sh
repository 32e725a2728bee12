#!/bin/sh
# plots.sh: the metric-time sweep and the scaling plots of `make bench` (bench/run.sh calls it
# last). Usage: sh bench/plots.sh BUILD DATA
# 1. Times every array metric of bench_metrics on N = 1,000, 3,000, ..., 1,000,000 rows
#    (`bench_metrics THREADS N METRIC`, one process per point) into DATA/metrics_scaling.csv. A
#    metric's sweep stops before a point predicted to take over LIMIT seconds (its last time,
#    if over 0.5 s, times the growth of N to the power of its last local slope, at least 1;
#    KNOBS_BENCH_METRIC_LIMIT, default 20), so that the
#    whole sweep stays within a few minutes; DATA/metrics_capped.csv says where and why, and
#    the plot says it too.
# 2. bench/plot.py (/usr/bin/python3 + matplotlib, Agg) draws bench/train_batch.png,
#    bench/train_threads.png (from DATA/train.csv, which run.sh wrote) and
#    bench/metrics_scaling.png. Without matplotlib it says so and draws nothing.
BUILD=${1:-build}
DATA=${2:-bench/data}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
LIMIT=${KNOBS_BENCH_METRIC_LIMIT:-20}
mkdir -p "$DATA"
echo "## metric time against N (knobs, $THREADS threads; a metric stops before a point predicted over $LIMIT s)"
echo "metric,n,seconds,cpu_seconds" > "$DATA/metrics_scaling.csv"
echo "metric,next_n,predicted_seconds,limit_seconds" > "$DATA/metrics_capped.csv"
for m in mig modularity unsupervised irs sap explicitness dci mig_sampled beta_vae factor_vae; do
  pn=; pt=; s=1
  for n in 1000 3000 10000 30000 100000 300000 1000000; do
    if [ -n "$pt" ] && awk "BEGIN{exit !($pt > 0.5)}"; then
      pred=$(awk "BEGIN{s = $s < 1 ? 1 : $s; printf \"%.1f\", $pt * ($n / $pn) ^ s}")
      if awk "BEGIN{exit !($pred > $LIMIT)}"; then
        echo "$m,$n,$pred,$LIMIT" >> "$DATA/metrics_capped.csv"
        printf '%-14s stops at N=%s (N=%s: ~%s s predicted)\n' $m $pn $n $pred
        break
      fi
    fi
    line=$("$BUILD/bench/bench_metrics" $THREADS $n $m) || { echo "bench_metrics $THREADS $n $m failed: $line"; break; }
    echo "$line" >> "$DATA/metrics_scaling.csv"
    t=$(echo "$line" | cut -d, -f3)
    printf '%-14s N=%-8s %10s s\n' $m $n $t
    [ -n "$pt" ] && s=$(awk "BEGIN{print log($t / $pt) / log($n / $pn)}")
    pn=$n; pt=$t
  done
done
echo
echo "## plots"
if ! $PY -c "import matplotlib" 2>/dev/null; then
  echo "plots skipped: $PY has no matplotlib (apt-get install python3-matplotlib); the CSVs are in $DATA"
  exit 0
fi
sub="$(date -u +%Y-%m-%d), $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1))"
$PY bench/plot.py "$DATA" bench $THREADS "$sub" || echo "plot.py failed (the CSVs are in $DATA)"
