#!/bin/sh
# run.sh: every benchmark. Usage: sh bench/run.sh BUILD
# 1. The training step of the beta-VAE in knobs and in PyTorch on the same machine and thread
#    count, as ratios: conv at batch 16, 32, 64, 128, 256, 512 and mlp at 32, 64, 256 on THREADS
#    (2) threads, then conv at batch 64 on the other of 1 and 2 threads. PyTorch runs twice, with
#    its default OpenMP wait policy and with OMP_WAIT_POLICY=PASSIVE, and its faster run counts.
#    Every row also goes to bench/data/train.csv (the plots).
# 2. InfoGAN's training step (bench_train infogan, torch_infogan.py), batch 64, with the
#    parameter counts of both sides (they must be equal) and issue 10's target (>= 2x PyTorch).
# 3. The per-layer profile of the conv beta-VAE step, batch 64 (KNOBS_PROFILE=1 bench_train).
# 4. Inference: encoder throughput and one-image decoder latency (bench_infer, torch_infer.py).
# 5. The recurrent layers: LSTM and GRU, uni- and bidirectional (bench_lstm, torch_lstm.py).
# 6. Every other bench_* binary in BUILD/bench (metrics, data loading, rendering, serve, the
#    sgemm roof: bench_gemm).
# 7. `knobs train` end to end against the bare step, and `knobs eval` with every metric at the
#    reference defaults on the model it trained (first with the grid code table built, then
#    reading it).
# 8. bench/plots.sh: metric time against N, and the PNG plots into bench/.
# 9. Issue 10's targets, one row each, from the figures above: measured, reference, ratio, met.
# bench/README.md runs it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (env -u ...).
BUILD=${1:-build}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
DATA=bench/data
have_torch=1
$PY -c "import torch" 2>/dev/null || { have_torch=0; echo "python3-torch is absent: PyTorch columns skipped (apt-get install python3-torch)"; }
field() { echo "$1" | sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p"; }
TMPD=$(mktemp -d /tmp/knobs-bench-XXXXXX)
trap 'rm -rf "$TMPD"' EXIT
# fig NAME VALUE: keep a figure for the targets table at the end (bench/targets.sh reads them)
fig() { echo "$1=$2" >> "$TMPD/figs"; }
# torch_best SCRIPT ARGS...: the script under both OpenMP wait policies; prints the JSON line of
# the run with more images/s (or of the only one that printed a line)
torch_best() {
  t1=$($PY "$@"); t2=$(OMP_WAIT_POLICY=PASSIVE $PY "$@")
  a=$(field "$t1" images_per_s); c=$(field "$t2" images_per_s)
  if [ -z "$c" ] || { [ -n "$a" ] && awk "BEGIN{exit !($a > $c)}"; }; then echo "$t1"; else echo "$t2"; fi
}
mkdir -p "$DATA"
CSV="$DATA/train.csv.tmp"
echo "arch,batch,threads,impl,images_per_s,peak_rss_mb" > "$CSV"
# train_row ARCH BATCH THREADS: one row of the training table (and of train.csv)
train_row() {
  steps=$((1920 / $2)); [ $steps -lt 8 ] && steps=8
  k=$("$BUILD/bench/bench_train" $1 $2 $3 $steps) || { echo "bench_train failed"; exit 2; }
  ki=$(field "$k" images_per_s); kg=$(field "$k" gflops); km=$(field "$k" peak_rss_mb)
  echo "$1,$2,$3,knobs,$ki,$km" >> "$CSV"
  ti="-"; tm="-"; ratio="-"; mratio="-"
  if [ $have_torch = 1 ]; then
    t=$(torch_best bench/torch_train.py $1 $2 $3 $steps)
    ti=$(field "$t" images_per_s); tm=$(field "$t" peak_rss_mb)
    echo "$1,$2,$3,torch,$ti,$tm" >> "$CSV"
    ratio=$(awk "BEGIN{printf \"%.2fx\", $ki / $ti}")
    mratio=$(awk "BEGIN{printf \"%.2fx\", $km / $tm}")
  fi
  printf '%-6s %6s %7s | %10s %8s %8s | %10s %8s | %7s %7s\n' $1 $2 $3 "$ki" "$kg" "$km" "$ti" "$tm" "$ratio" "$mratio"
  fig "$1_$2_$3_knobs" "$ki"; fig "$1_$2_$3_torch" "$ti"; fig "$1_$2_$3_gflops" "$kg"
  fig "$1_$2_$3_rss" "$km"; fig "$1_$2_$3_trss" "$tm"
}
echo "## training step, beta-VAE (images/s; higher is better)"
printf '%-6s %6s %7s | %10s %8s %8s | %10s %8s | %7s %7s\n' arch batch threads knobs GFLOP/s "RSS MB" torch "RSS MB" speed memory
for b in 16 32 64 128 256 512; do train_row conv $b $THREADS; done
for b in 32 64 256; do train_row mlp $b $THREADS; done
for t in 1 2; do [ $t = "$THREADS" ] || train_row conv 64 $t; done
echo "(speed = knobs / PyTorch images/s; memory = knobs / PyTorch peak RSS)"
echo
IB=64; IS=20 # InfoGAN: batch, timed steps
echo "## InfoGAN training step (src/models/infogan.c's defaults, conv networks, 64x64), batch $IB, $THREADS threads"
k=$("$BUILD/bench/bench_train" infogan $IB $THREADS $IS) || { echo "bench_train infogan failed"; exit 2; }
ki=$(field "$k" images_per_s); kp=$(field "$k" params)
echo "infogan,$IB,$THREADS,knobs,$ki,$(field "$k" peak_rss_mb)" >> "$CSV"
printf '%-6s | %10s %8s %8s %10s\n' impl "img/s" GFLOP/s "RSS MB" params
printf '%-6s | %10s %8s %8s %10s\n' knobs "$ki" "$(field "$k" gflops)" "$(field "$k" peak_rss_mb)" "$kp"
if [ $have_torch = 1 ]; then
  t=$(torch_best bench/torch_infogan.py $IB $THREADS $IS)
  ti=$(field "$t" images_per_s); tp=$(field "$t" params)
  echo "infogan,$IB,$THREADS,torch,$ti,$(field "$t" peak_rss_mb)" >> "$CSV"
  printf '%-6s | %10s %8s %8s %10s\n' torch "$ti" - "$(field "$t" peak_rss_mb)" "$tp"
  [ "$kp" = "$tp" ] && same="equal (the same networks)" || same="DIFFERENT: the two sides do not train the same networks"
  echo "parameters: knobs $kp, PyTorch $tp: $same"
  awk "BEGIN{r = $ki / $ti; printf \"speed: %.2fx PyTorch (issue 10's target >= 2x: %s)\n\", r, (r >= 2 ? \"met\" : \"not met\")}"
  fig infogan_torch "$ti"
fi
fig infogan_knobs "$ki"
mv "$CSV" "$DATA/train.csv"
echo
echo "## per-layer profile, conv beta-VAE step, batch 64, $THREADS threads (KNOBS_PROFILE=1 bench_train conv 64 $THREADS 60)"
KNOBS_PROFILE=1 "$BUILD/bench/bench_train" conv 64 $THREADS 60 2>&1 >/dev/null || echo "bench_train failed"
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
fig enc_knobs "$ke"; fig enc_torch "$te"; fig dec_knobs "$kd"; fig dec_torch "$td"
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
  "$b" > "$TMPD/out" || echo "$(basename "$b") failed"
  cat "$TMPD/out"
  case "$b" in
  */bench_metrics)
    fig dci "$(awk '$1 == "dci" { print $2 }' "$TMPD/out")"
    fig dci_py "$(awk '$1 == "dci" && $5 ~ /^[0-9.]+$/ { print $5 }' "$TMPD/out")" ;;
  */bench_gemm)
    fig gemm2 "$(awk '/^square .*\(2 threads\)/ { if ($NF > m) m = $NF } END { print m }' "$TMPD/out")" ;;
  esac
done
echo
sh bench/e2e.sh "$BUILD" "$THREADS" "$TMPD"
echo
sh bench/plots.sh "$BUILD" "$DATA"
echo
sh bench/targets.sh "$TMPD/figs" "$THREADS"
