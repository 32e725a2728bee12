#!/bin/sh
# Run every test binary (and tests/test_*.sh) from the repository root, sum their closing
# "N passed, N failed" lines (", N skipped" may follow: a check that could not run, counted
# apart from the passes), and print the total "N passed, N failed, N skipped" as the last
# line. Exit non-zero on any failure, including a binary that crashed or printed no summary.
BUILD=$1; shift
P=0; F=0; S=0; log=$(mktemp); start=$(date +%s)
for t in "$@" tests/test_*.sh; do
  [ -e "$t" ] || continue
  case "$t" in *.sh) cmd="sh $t $BUILD" ;; *) cmd="$t" ;; esac
  t0=$(date +%s)
  $cmd >"$log" 2>&1; rc=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -1)
  p=$(echo "$line" | cut -d' ' -f1); f=$(echo "$line" | cut -d' ' -f3 | tr -d ,)
  s=$(echo "$line" | cut -d' ' -f5); [ -z "$s" ] && s=0
  [ -z "$line" ] && { p=0; f=1; s=0; }
  [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
  P=$((P + p)); F=$((F + f)); S=$((S + s))
  printf '%-34s %5s passed %3s failed %3s skipped %4ss\n' "$(basename "$t")" "$p" "$f" "$s" $(( $(date +%s) - t0 ))
  grep '^skip: ' "$log" | sed 's/^/    /'
  if [ "$f" != 0 ]; then
    echo "---- output of $t (exit $rc) ----"; tail -40 "$log"; echo "----"
  fi
done
rm -f "$log"
echo "suite took $(( $(date +%s) - start ))s"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
