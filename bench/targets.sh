#!/bin/sh
# targets.sh: issue 10's targets, one row each, from the NAME=VALUE figures bench/run.sh and
# bench/e2e.sh kept in FIGS (the last value of a name counts). A figure that was not measured
# (PyTorch absent, a benchmark failed) shows "-" and its row says "not measured".
# Usage: sh bench/targets.sh FIGS [THREADS]
FIGS=$1
T=${2:-2}
get() { v=$(sed -n "s/^$1=//p" "$FIGS" 2>/dev/null | tail -1); [ -n "$v" ] && echo "$v" || echo "-"; }
# row WHAT KNOBS REFERENCE RATIO TARGET VERDICT
row() { printf '%-42s | %10s | %10s | %8s | %-28s | %s\n' "$1" "$2" "$3" "$4" "$5" "$6"; }
# judge EXPR: "met" / "not met" by awk, "not measured" when a figure in it is "-"
judge() { case " $1 " in *" - "*) echo "not measured" ;; *) awk "BEGIN{print (($1) ? \"met\" : \"not met\")}" ;; esac; }
ratio() { case "$1$2" in *-*) echo "-" ;; *) awk "BEGIN{printf \"%.2fx\", $1 / $2}" ;; esac; }

ck=$(get conv_64_${T}_knobs); ct=$(get conv_64_${T}_torch); cg=$(get conv_64_${T}_gflops); g2=$(get gemm2)
mk=$(get mlp_64_${T}_knobs); mt=$(get mlp_64_${T}_torch)
er=$(get e2e_rows); eb=$(get e2e_bare)
rk=$(get conv_64_${T}_rss); rt=$(get conv_64_${T}_trss)
nk=$(get enc_knobs); nt=$(get enc_torch); dk=$(get dec_knobs); dt=$(get dec_torch)
ef=$(get eval_first); el=$(get eval_later)
dc=$(get dci); dp=$(get dci_py)
ik=$(get infogan_knobs); it=$(get infogan_torch)

echo "## issue 10's targets ($T threads; ratio: knobs against the reference, as the target reads it)"
row "figure" "knobs" "reference" "ratio" "target" "verdict"
r=$(ratio "$ck" "$ct"); row "conv beta-VAE step, b64 (img/s)" "$ck" "$ct" "$r" ">= 4x PyTorch" "$(judge "$ck / $ct >= 4")"
row "conv beta-VAE step, b64 (img/s)" "$ck" "-" "-" ">= 1,700 img/s" "$(judge "$ck >= 1700")"
r=$(ratio "$cg" "$g2"); row "conv step GFLOP/s / 2-thread sgemm" "$cg" "$g2" "$r" ">= 0.60x the sgemm ceiling" "$(judge "$cg / $g2 >= 0.6")"
r=$(ratio "$mk" "$mt"); row "mlp beta-VAE step, b64 (img/s)" "$mk" "$mt" "$r" ">= 4x PyTorch" "$(judge "$mk / $mt >= 4")"
r=$(ratio "$er" "$eb"); row "knobs train end to end (img/s)" "$er" "$eb" "$r" "within 5% of the bare step" "$(judge "$er / $eb >= 0.95")"
r=$(ratio "$rk" "$rt"); row "peak RSS, conv b64 training (MB)" "$rk" "$rt" "$r" "<= 0.25x PyTorch" "$(judge "$rk / $rt <= 0.25")"
r=$(ratio "$nk" "$nt"); row "encoder, conv, b256 (img/s)" "$nk" "$nt" "$r" ">= 3x PyTorch" "$(judge "$nk / $nt >= 3")"
row "encoder, conv, b256 (img/s)" "$nk" "-" "-" ">= 20,000 img/s" "$(judge "$nk >= 20000")"
r=$(ratio "$dk" "$dt"); row "decoder, one image (ms)" "$dk" "$dt" "$r" "<= 0.15 ms" "$(judge "$dk <= 0.15")"
row "knobs eval, all metrics, first (s)" "$ef" "-" "-" "<= 60 s" "$(judge "$ef <= 60")"
row "knobs eval, all metrics, later (s)" "$el" "-" "-" "<= 60 s" "$(judge "$el <= 60")"
r=$(ratio "$dc" "$dp"); row "DCI, N 10,000, D 10, K 5 (s)" "$dc" "$dp" "$r" "<= 2 s" "$(judge "$dc <= 2")"
r=$(ratio "$ik" "$it"); row "InfoGAN step, b64 (img/s)" "$ik" "$it" "$r" ">= 2x PyTorch" "$(judge "$ik / $it >= 2")"
echo "(reference: PyTorch on the same machine and threads; for the GFLOP/s row bench_gemm's best"
echo " square product on 2 threads; for knobs train, the bare step; for DCI, scikit-learn's trees"
echo " when KNOBS_BENCH_FAST is unset)"
