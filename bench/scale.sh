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
best() { # label command...: the best images/s of REPEAT runs (also kept in $b)
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
ONE_THREAD_MEASURED=$b
best "1 process x 2 threads" "$K" train --threads 2
best "2 ranks x 1 thread (shards of 32)" mpirun $ROOT --oversubscribe -np 2 -x OMPI_MCA_mpi_yield_when_idle=1 "$K" train --threads 1
params=$("$K" info "$T/run" 2>/dev/null | sed -n 's/^parameters: *//p')
echo
echo "parameters: $params ($((params * 4)) bytes summed across the ranks every step)"
rm -rf "$T"
# The paper estimate (docs/scale.md): weak scaling, each rank a batch of 64 (the global batch
# 64 P), compute per step t_c = 64 / (one rank's images/s) from the 1-thread figure above
# (ONE_THREAD overrides it), or 16 times less for a rank that is a 16-core node trained at 16
# times the rate; the sum of S = 4 x parameters bytes by a bandwidth-optimal allreduce (ring or
# Rabenseifner): 2 (P-1)/P S / BW + 2 log2(P) a, with a = 20 us (10 Gbit/s Ethernet, TCP) or
# 2 us (100 Gbit/s, RDMA); efficiency t_c / (t_c + t_sum), no overlap of the two.
ONE=${ONE_THREAD:-$(echo "$ONE_THREAD_MEASURED" | tr -d ' ')}
[ -n "$ONE" ] || exit 0
echo
echo "| ranks | network | rank = 1 core: step, efficiency, img/s | rank = 16-core node: step, efficiency, img/s |"
echo "|---|---|---|---|"
for P in 8 64 512; do
  for net in 10 100; do
    awk -v P="$P" -v G="$net" -v S="$((params * 4))" -v one="$ONE" 'BEGIN {
      a = G == 10 ? 20e-6 : 2e-6; bw = G * 1e9 / 8
      lg = log(P) / log(2); tar = 2 * (P - 1) / P * S / bw + 2 * lg * a
      for (k = 0; k < 2; k++) {
        tc = 64 / (one * (k ? 16 : 1)); t = tc + tar
        cell[k] = sprintf("%.1f ms, %.0f %%, %.0f", 1000 * t, 100 * tc / t, 64 * P / t)
      }
      printf "| %d | %d Gbit/s | %s | %s |\n", P, G, cell[0], cell[1]
    }'
  done
done
