#!/bin/sh
# test_bench_build.sh: the benchmark programs still build against the library as it is now, so
# `make bench` and the quality benchmark cannot rot unseen between runs: every bench/bench_*.c
# (built by `make test` beside the tests) is an executable in BUILD/bench, and
# bench/quality/quality.c compiles with the flags bench/quality/run.sh reads from BUILD/.flags.
# Nothing is run or timed here. Usage: sh tests/test_bench_build.sh BUILD
BUILD=${1:-build}
T=$(mktemp -d /tmp/knobs-benchbuild-XXXXXX)
. "$(dirname "$0")/lib.sh"
n=0
for c in bench/bench_*.c; do
  b="$BUILD/bench/$(basename "$c" .c)"
  [ -x "$b" ] && ok || bad "$b was not built (make test builds every bench/bench_*.c)"
  n=$((n + 1))
done
[ $n -ge 9 ] && ok || bad "only $n bench programs found"
expect 0 "" env BUILD_ONLY=1 OUT="$T/q" sh bench/quality/run.sh "$BUILD"
[ -x "$T/q/quality" ] && ok || bad "bench/quality/run.sh built no $T/q/quality"
rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
