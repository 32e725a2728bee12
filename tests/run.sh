#!/bin/sh
# Run every test binary (and tests/test_*.sh) from the repository root, sum their closing
# "N passed, N failed" lines, and print the total as the last line. Exit non-zero on any
# failure, including a binary that crashed or printed no summary.
BUILD=$1; shift
P=0; F=0; log=$(mktemp); start=$(date +%s)
for t in "$@" tests/test_*.sh; do
  [ -e "$t" ] || continue
  case "$t" in *.sh) cmd="sh $t $BUILD" ;; *) cmd="$t" ;; esac
  t0=$(date +%s)
  $cmd >"$log" 2>&1; rc=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  p=$(echo "$line" | cut -d' ' -f1); f=$(echo "$line" | cut -d' ' -f3)
  [ -z "$line" ] && { p=0; f=1; }
  [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
  P=$((P + p)); F=$((F + f))
  printf '%-34s %5s passed %3s failed %4ss\n' "$(basename "$t")" "$p" "$f" $(( $(date +%s) - t0 ))
  if [ "$f" != 0 ]; then
    echo "---- output of $t (exit $rc) ----"; tail -40 "$log"; echo "----"
  fi
done
rm -f "$log"
echo "suite took $(( $(date +%s) - start ))s"
echo "$P passed, $F failed"
[ "$F" = 0 ]
