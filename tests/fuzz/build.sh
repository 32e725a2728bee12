#!/bin/sh
# build.sh BUILD: build every tests/fuzz/fuzz_*.c with clang and libFuzzer
# (-fsanitize=fuzzer,address,undefined) against BUILD/libknobs.a, which `make fuzz` builds with
# -fsanitize=address,undefined,fuzzer-no-link; write seed inputs with make_seeds (valid files
# of each format, plus the committed bad files of tests/corpus); then run each target for
# FUZZ_SECONDS seconds (default 10; 0 only builds). New inputs go to BUILD/fuzz/corpus/<target>,
# crashes to BUILD/fuzz/crash-*; the exit status is non-zero if any target crashed.
#   make fuzz                          build and run every target for 10 s
#   FUZZ_SECONDS=600 make fuzz         a longer run
#   BUILD/fuzz/fuzz_csv -max_total_time=60 BUILD/fuzz/corpus/fuzz_csv   one target by hand
set -e
B=${1:?usage: tests/fuzz/build.sh BUILD}
S=${FUZZ_SECONDS:-10}
CC=${FUZZ_CC:-clang}
OUT=$B/fuzz
mkdir -p "$OUT"
FL="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Isrc -Itests/fuzz -I/usr/include/hdf5/serial"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
LIBS="-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lpng -lz -lcjson -lm -pthread"

$CC $FL $SAN -fsanitize=fuzzer-no-link tests/fuzz/make_seeds.c "$B/libknobs.a" $LIBS -o "$OUT/make_seeds"
rm -rf "$OUT/seeds"
"$OUT/make_seeds" "$OUT/seeds"
# the committed bad files seed the target of their format
add() { mkdir -p "$OUT/seeds/$1"; for f in $2; do [ -f "$f" ] && cp "$f" "$OUT/seeds/$1/" || true; done; }
add fuzz_npy "tests/corpus/npy/*"
add fuzz_npz "tests/corpus/npz/*"
add fuzz_safetensors "tests/corpus/safetensors/*"
add fuzz_png "tests/corpus/png/*.png tests/corpus/png/*/*.png"
add fuzz_csv "tests/corpus/csv/*"
add fuzz_h5 "tests/corpus/h5/*"
add fuzz_mtx "tests/corpus/mtx/*.mtx"
add fuzz_h5ad "tests/corpus/h5ad/* tests/ref/cells_ref.h5ad tests/ref/cells_ref_csc.h5ad"

status=0
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  $CC $FL $SAN -fsanitize=fuzzer "$src" "$B/libknobs.a" $LIBS -o "$OUT/$t"
  echo "built $OUT/$t"
done
[ "$S" = 0 ] && exit 0
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  mkdir -p "$OUT/corpus/$t" "$OUT/tmp-$t"
  echo "fuzzing $t for ${S}s"
  if ! TMPDIR="$OUT/tmp-$t" ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
       "$OUT/$t" -max_total_time="$S" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
       -artifact_prefix="$OUT/crash-$t-" "$OUT/corpus/$t" "$OUT/seeds/$t" >"$OUT/$t.log" 2>&1; then
    echo "  $t FAILED: see $OUT/$t.log and $OUT/crash-$t-*"
    status=1
  fi
  grep -E "^(#[0-9]+|Done)" "$OUT/$t.log" | tail -1 | sed 's/^/  /'
  rm -rf "$OUT/tmp-$t"
done
exit $status
