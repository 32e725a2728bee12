#!/bin/sh
# test_blas_cores.sh: the GEMM tests (test_core's "sgemm splits", against float64) and the
# models' PyTorch reference tests (test_ref) under every OpenBLAS kernel set this CPU runs:
# the one knobs chooses (OPENBLAS_CORETYPE unset: src/core/blas.c), Haswell (AVX2) and
# SkylakeX (AVX-512), each forced through OPENBLAS_CORETYPE. A kernel set the CPU lacks is
# counted as skipped. `knobs --version` must name the kernels that were asked for.
# Usage: sh tests/test_blas_cores.sh BUILD
BUILD=${1:-build}
. "$(dirname "$0")/lib.sh"
has() { grep -q -w "$1" /proc/cpuinfo 2>/dev/null; }
run_with() { # core (or "auto")
  core=$1
  if [ "$core" = auto ]; then set -- env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
  else set -- env OPENBLAS_CORETYPE="$core"; fi
  v=$("$@" "$BUILD/knobs" --version 2>&1)
  if [ "$core" = auto ]; then
    echo "$v" | grep -q "kernels " && ok || bad "auto: --version names no kernels: $v"
  else
    echo "$v" | grep -q "kernels $core" && ok || bad "OPENBLAS_CORETYPE=$core: --version says: $v"
  fi
  for t in test_core test_ref; do
    out=$("$@" "$BUILD/tests/$t" 2>&1); rc=$?
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ "$rc" = 0 ] && [ -n "$line" ]; then ok
    else bad "$t with kernels $core (exit $rc): $(echo "$out" | grep FAIL | head -5)"; fi
  done
}
run_with auto
if has avx2 && has fma; then run_with Haswell; else S=$((S + 1)); echo "skip: no AVX2 on this CPU (Haswell kernels)"; fi
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then run_with SkylakeX
else S=$((S + 1)); echo "skip: no AVX-512 on this CPU (SkylakeX kernels)"; fi
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
