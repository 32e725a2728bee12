#!/bin/sh
# run.sh: every benchmark. Usage: sh bench/run.sh BUILD
# 1. The training step of the beta-VAE (both architectures; batch 32, 64, 256) in knobs and in
#    PyTorch on the same machine and thread count, as ratios. PyTorch runs twice, with its
#    default OpenMP wait policy and with OMP_WAIT_POLICY=PASSIVE, and its faster run counts.
# 2. Inference: encoder throughput and one-image decoder latency (bench_infer, torch_infer.py).
# 3. The recurrent layers: LSTM and GRU, uni- and bidirectional (bench_lstm, torch_lstm.py).
# 4. Every other bench_* binary in BUILD/bench (metrics, data loading, rendering, serve).
BUILD=${1:-build}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
have_torch=1
$PY -c "import torch" 2>/dev/null || { have_torch=0; echo "python3-torch is absent: PyTorch columns skipped (apt-get install python3-torch)"; }
field() { echo "$1" | sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p"; }
echo "## training step, beta-VAE, $THREADS threads (images/s; higher is better)"
printf '%-6s %6s | %10s %8s %8s | %10s %8s | %7s %7s\n' arch batch knobs GFLOP/s "RSS MB" torch "RSS MB" speed memory
for arch in conv mlp; do
  for b in 32 64 256; do
    steps=$((1920 / b)); [ $steps -lt 8 ] && steps=8
    k=$("$BUILD/bench/bench_train" $arch $b $THREADS $steps) || { echo "bench_train failed"; exit 2; }
    ki=$(field "$k" images_per_s); kg=$(field "$k" gflops); km=$(field "$k" peak_rss_mb)
    ti="-"; tm="-"; ratio="-"; mratio="-"
    if [ $have_torch = 1 ]; then
      t1=$($PY bench/torch_train.py $arch $b $THREADS $steps)
      t2=$(OMP_WAIT_POLICY=PASSIVE $PY bench/torch_train.py $arch $b $THREADS $steps)
      a=$(field "$t1" images_per_s); c=$(field "$t2" images_per_s)
      if awk "BEGIN{exit !($a > $c)}"; then ti=$a; tm=$(field "$t1" peak_rss_mb); else ti=$c; tm=$(field "$t2" peak_rss_mb); fi
      ratio=$(awk "BEGIN{printf \"%.2fx\", $ki / $ti}")
      mratio=$(awk "BEGIN{printf \"%.2fx\", $km / $tm}")
    fi
    printf '%-6s %6s | %10s %8s %8s | %10s %8s | %7s %7s\n' $arch $b "$ki" "$kg" "$km" "$ti" "$tm" "$ratio" "$mratio"
  done
done
echo "(speed = knobs / PyTorch images/s; memory = knobs / PyTorch peak RSS)"
echo
echo "## inference, conv beta-VAE, $THREADS threads: encoder images/s (posterior means, batch 256; higher is better),"
echo "## decoder latency of one code -> one 64x64 image (ms; lower is better)"
k=$("$BUILD/bench/bench_infer" $THREADS 256) || { echo "bench_infer failed"; exit 2; }
ke=$(field "$k" encode_images_per_s); kd=$(field "$k" decode_ms_median); kp=$(field "$k" decode_ms_p90)
te="-"; td="-"; tp="-"; er="-"; dr="-"
if [ $have_torch = 1 ]; then
  # both OpenMP wait policies, as for training; the better of the two for each figure
  t1=$($PY bench/torch_infer.py $THREADS 256); t2=$(OMP_WAIT_POLICY=PASSIVE $PY bench/torch_infer.py $THREADS 256)
  te=$(awk "BEGIN{a=$(field "$t1" encode_images_per_s); b=$(field "$t2" encode_images_per_s); print (a > b ? a : b)}")
  if awk "BEGIN{exit !($(field "$t1" decode_ms_median) < $(field "$t2" decode_ms_median))}"; then t=$t1; else t=$t2; fi
  td=$(field "$t" decode_ms_median); tp=$(field "$t" decode_ms_p90)
  er=$(awk "BEGIN{printf \"%.2fx\", $ke / $te}"); dr=$(awk "BEGIN{printf \"%.2fx\", $td / $kd}")
fi
printf '%-26s | %12s | %12s | %7s\n' what knobs torch ratio
printf '%-26s | %12s | %12s | %7s\n' "encoder img/s (b256)" "$ke" "$te" "$er"
printf '%-26s | %12s | %12s | %7s\n' "decoder ms, median" "$kd" "$td" "$dr"
printf '%-26s | %12s | %12s | %7s\n' "decoder ms, p90" "$kp" "$tp" "-"
echo "(ratio = how many times faster knobs is)"
echo
echo "## recurrent layers (DSVAE-like: T=8, B=64, I=256, H=256), $THREADS threads: ms per forward and per"
echo "## training step's share (forward + backward into input and weights); lower is better"
printf '%-10s | %8s %8s | %8s %8s | %7s %7s\n' layer "knobs fw" step "torch fw" step "fw" step
for cell in lstm gru; do
  for dirs in 1 2; do
    k=$("$BUILD/bench/bench_lstm" $cell $dirs $THREADS) || { echo "bench_lstm failed"; exit 2; }
    kf=$(field "$k" fwd_ms); ks=$(field "$k" step_ms)
    tf="-"; ts="-"; fr="-"; sr="-"
    if [ $have_torch = 1 ]; then
      # both OpenMP wait policies, as for training; the better of the two for each figure
      t1=$($PY bench/torch_lstm.py $cell $dirs $THREADS); t2=$(OMP_WAIT_POLICY=PASSIVE $PY bench/torch_lstm.py $cell $dirs $THREADS)
      tf=$(awk "BEGIN{a=$(field "$t1" fwd_ms); b=$(field "$t2" fwd_ms); print (a < b ? a : b)}")
      ts=$(awk "BEGIN{a=$(field "$t1" step_ms); b=$(field "$t2" step_ms); print (a < b ? a : b)}")
      fr=$(awk "BEGIN{printf \"%.2fx\", $tf / $kf}"); sr=$(awk "BEGIN{printf \"%.2fx\", $ts / $ks}")
    fi
    [ $dirs = 2 ] && name="bi-$cell" || name=$cell
    printf '%-10s | %8s %8s | %8s %8s | %7s %7s\n' $name "$kf" "$ks" "$tf" "$ts" "$fr" "$sr"
  done
done
echo "(ratio = PyTorch's time / knobs' time: how many times faster knobs is)"
for b in "$BUILD"/bench/bench_*; do
  case "$b" in */bench_train|*/bench_infer|*/bench_lstm|*/bench_prior) continue ;; esac # bench_prior: bench/apps/penalty.sh
  [ -x "$b" ] || continue
  echo; echo "## $(basename "$b")"
  "$b" || echo "$(basename "$b") failed"
done
