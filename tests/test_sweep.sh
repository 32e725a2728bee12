#!/bin/sh
# test_sweep.sh: `knobs sweep` on local jobs: the grid (ranges, alternatives joined by '|', a key
# left out of a model it is not a setting of, names), refusals with nothing written (an unknown
# setting or model, a value out of range, a bad range, a flag the sweep sets, another sweep in
# the folder, a held lock), a sweep of 3 runs on 2 jobs with knobs eval after each (sweep.json
# states, eval.json, a run the bytes of the same knobs train), and resume: a sweep stopped by
# SIGINT mid-run continues with --resume, and the stopped run ends as the bytes of an
# uninterrupted knobs train; a larger --steps continues finished runs.
# Usage: sh tests/test_sweep.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-sweep-XXXXXX)
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
same() { if cmp -s "$1" "$2"; then ok; else bad "$1 and $2 differ"; fi; }
states() { grep -c "\"state\":.*\"$1\"" "$2/sweep.json"; }
last_step() { tail -n 1 "$1/log.csv" | cut -d, -f1; }

expect 0 "usage: knobs sweep" "$K" sweep --help
expect 0 "sweep" "$K" help

# the grid
expect 0 "" "$K" sweep --grid "model=betavae,factorvae; beta=1,4; seed=0..1" --out g --dry-run
[ "$(wc -l < "$T/out")" = 6 ] && ok || bad "betavae x beta x seed + factorvae x seed is 6 runs: $(cat "$T/out")"
grep -q '^betavae-beta4-seed1 ' "$T/out" && ok || bad "run name betavae-beta4-seed1 missing"
grep -q '^factorvae-seed0 ' "$T/out" && ok || bad "beta is not a factorvae setting: factorvae-seed0 expected"
expect 0 "" "$K" sweep --grid "model=betavae; beta=2 | model=tcvae; tcvae-beta=3,6" --out g --dry-run -- --arch mlp
[ "$(wc -l < "$T/out")" = 3 ] && ok || bad "alternatives: 3 runs expected: $(cat "$T/out")"
grep -q 'tcvae-tcvae_beta6 .*arch=mlp' "$T/out" && ok || bad "shared flag and dashes: $(cat "$T/out")"
[ ! -e g ] && ok || bad "--dry-run wrote the folder"

# refusals: exit 1, nothing written
expect 1 "not a setting of any model" "$K" sweep --grid "model=betavae; bta=1" --out r
expect 1 "out of range" "$K" sweep --grid "beta=-1" --out r
expect 1 "unknown model" "$K" sweep --grid "model=nosuch" --out r
expect 1 "range of whole numbers" "$K" sweep --grid "seed=3..1" --out r
expect 1 "not key=values" "$K" sweep --grid "seed" --out r
expect 1 "given twice" "$K" sweep --grid "seed=1; seed=2" --out r
expect 1 "set by the sweep" "$K" sweep --grid "seed=1" --out r -- --out x
expect 1 "set by the sweep" "$K" sweep --grid "seed=1" --out r --eval "--model x"
expect 1 "--out DIR is required" "$K" sweep --grid "seed=1"
expect 1 "--resume takes" "$K" sweep --resume r --grid "seed=1"
expect 1 "unknown option" "$K" sweep --grid "seed=1" --out r --bogus
expect 2 "no sweep in" "$K" sweep --resume r
[ ! -e r ] && ok || bad "a refused sweep wrote its folder"

# a sweep: 3 runs on 2 jobs, each evaluated
FL="--arch mlp --hidden 64 --batch 32 --log-every 10"
expect 0 "3 of 3 runs finished" "$K" sweep --grid "seed=0..2" --data physics --steps 40 --jobs 2 --threads 1 \
  --eval "--metrics mcc --num-train 500 --num-test 200" --out s -- $FL
[ "$(states done s)" = 3 ] && ok || bad "3 runs done: $(cat s/sweep.json)"
for r in betavae-seed0 betavae-seed1 betavae-seed2; do
  [ -s "s/$r/eval.json" ] && grep -q '"mcc"' "s/$r/eval.json" && ok || bad "s/$r/eval.json with mcc"
  [ "$(last_step "s/$r")" = 40 ] && ok || bad "s/$r trained to 40"
done
"$K" train --data physics --steps 40 --seed 1 --threads 1 --quiet --out direct $FL && ok || bad "direct run"
same direct/model.safetensors s/betavae-seed1/model.safetensors
expect 0 "0 to do" "$K" sweep --grid "seed=0..2" --data physics --steps 40 --jobs 2 --threads 1 \
  --eval "--metrics mcc --num-train 500 --num-test 200" --out s -- $FL
grep -q "trained" "$T/out" && bad "a finished sweep trained again" || ok
expect 1 "holds another sweep" "$K" sweep --grid "seed=0..3" --data physics --steps 40 --out s -- $FL
# a larger --steps continues every run
expect 0 "3 of 3 runs finished" "$K" sweep --grid "seed=0..2" --data physics --steps 60 --jobs 2 --threads 1 \
  --eval "--metrics mcc --num-train 500 --num-test 200" --out s -- $FL
[ "$(last_step s/betavae-seed0)" = 60 ] && ok || bad "steps 60: $(last_step s/betavae-seed0)"

# resume: SIGINT while the runs train, then --resume
"$K" sweep --grid "seed=0..1" --data physics --steps 20000 --jobs 2 --threads 1 --no-eval --out i -- $FL \
  --ckpt-every 1000 >"$T/i.out" 2>&1 &
pid=$!
n=0
while [ $n -lt 600 ] && ! { [ -f i/betavae-seed0/log.csv ] && [ "$(wc -l < i/betavae-seed0/log.csv)" -ge 4 ]; }; do
  sleep 0.05; n=$((n + 1))
done
kill -INT $pid
wait $pid; rc=$?
[ "$rc" = 130 ] && ok || bad "a stopped sweep exits 130, got $rc: $(cat "$T/i.out")"
[ "$(states done i)" = 0 ] && ok || bad "the runs were stopped before their end: $(cat i/sweep.json)"
s0=$(last_step i/betavae-seed0)
[ "$s0" -lt 20000 ] && ok || bad "seed0 stopped at $s0"
expect 0 "2 of 2 runs finished" "$K" sweep --resume i --jobs 2 --threads 1
"$K" train --data physics --steps 20000 --seed 0 --threads 1 --quiet --out direct0 $FL --ckpt-every 1000 && ok || bad "direct0"
same direct0/model.safetensors i/betavae-seed0/model.safetensors  # (optimizer.safetensors holds the seconds trained)

# the folder's lock
if command -v flock >/dev/null 2>&1; then
  flock i/sweep.lock sleep 3 &
  sleep 0.5
  expect 2 "in use by another knobs sweep" "$K" sweep --resume i
  wait
else
  S=$((S + 1)); echo "skip: sweep lock: flock(1) not installed"
fi

cd /; rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
