#!/bin/sh
# scale.sh: data-parallel training on this machine (docs/scale.md): the conv beta-VAE, batch 64,
# STEPS steps, as 1 process x 1 thread, 1 process x 2 threads and 2 MPI ranks x 1 thread (each
# rank a shard of 32), best of REPEAT runs each; images/s from log.csv (training time only, not
# the start-up). Prints a markdown table. Needs mpirun; never part of make test.
#
#   sh bench/scale.sh BUILD
BUILD=${1:-build}; K=$PWD/$BUILD/knobs
STEPS=${STEPS:-300}; REPEAT=${REPEAT:-3}; ARCH=${ARCH:-conv}
T=$(mktemp -d /tmp/knobs-scale-XXXXXX)
ROOT=""; [ "$(id -u)" = 0 ] && ROOT="--allow-run-as-root"
best() { # label command...: the best images/s of REPEAT runs
  label=$1; shift; b=0
  for r in $(seq "$REPEAT"); do
    rm -rf "$T/run"
    "$@" --arch "$ARCH" --steps "$STEPS" --batch 64 --log-every "$STEPS" --quiet --out "$T/run" >/dev/null 2>&1 || { echo "$label: failed" >&2; return; }
    ips=$(tail -n 1 "$T/run/log.csv" | awk -F, -v s="$STEPS" '{ printf "%.0f", s * 64 / $2 }')
    [ "$ips" -gt "$b" ] && b=$ips
  done
  echo "| $label | $b |"
}
echo "| $ARCH beta-VAE, batch 64, $STEPS steps | img/s (best of $REPEAT) |"
echo "|---|---|"
best "1 process x 1 thread" "$K" train --threads 1
best "1 process x 2 threads" "$K" train --threads 2
best "2 ranks x 1 thread (shards of 32)" mpirun $ROOT --oversubscribe -np 2 -x OMPI_MCA_mpi_yield_when_idle=1 "$K" train --threads 1
params=$("$K" info "$T/run" 2>/dev/null | sed -n 's/^parameters: *//p')
echo
echo "parameters: $params ($((params * 4)) bytes summed across the ranks every step)"
rm -rf "$T"
