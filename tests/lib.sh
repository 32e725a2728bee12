# lib.sh: what every shell test shares, sourced right after it sets T (its temporary folder):
# the counters P (passed), F (failed), S (skipped), ok, bad, and
#   expect CODE PATTERN CMD ARGS...   run CMD; pass if it exits CODE and, when PATTERN is not
#                                     empty, its stdout or stderr contains PATTERN
# Each script prints "$P passed, $F failed, $S skipped" at its end (tests/run.sh sums them).
P=0; F=0; S=0
ok() { P=$((P + 1)); }
bad() { F=$((F + 1)); echo "FAIL: $*" >&2; }
expect() {
  code=$1; pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; rc=$?
  if [ "$rc" != "$code" ]; then bad "$* -> exit $rc, want $code: $(head -c 400 "$T/err")"; return; fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$T/err" "$T/out"; then bad "$* -> output lacks '$pat': $(head -c 400 "$T/out" "$T/err")"; return; fi
  ok
}
