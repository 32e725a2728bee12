#!/bin/sh
# test_cli_run.sh: run folders through `knobs train`: a folder that holds a run is refused
# (and --overwrite replaces it), one writer at a time (the second is told the holder's pid),
# a run killed with SIGKILL and resumed reads as if it had never stopped (log rows, final
# checkpoint bytes, seconds), the settings that may change on resume take effect and the others
# are refused by flag, checkpoints holding NaN/Inf are refused (and --allow-nonfinite lets info
# show them), model.safetensors loads strictly into the PyTorch module (skipped without
# python3-torch), and ivae takes its classes of u from the data (resumed runs too) or refuses
# data without its factor. Usage: sh tests/test_cli_run.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
TESTS="$PWD/tests"
T=$(mktemp -d /tmp/knobs-cli-run-XXXXXX)
. "$(dirname "$0")/lib.sh"
# wait_for FILE: up to 60 s for FILE to appear
wait_for() {
  i=0
  while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
  [ -e "$1" ]
}
# the step a checkpoint is at, from `knobs info`
ckpt_step() { "$K" info "$1" 2>/dev/null | head -1 | sed -n 's/.*, \([0-9]*\) of .*/\1/p'; }
MLP="--arch mlp --hidden 16 --latents 3 --batch 8 --threads 1 --seed 5"

# ---- fault 2: a folder that holds a run is not silently replaced --------------------------
R2="$T/r2"
expect 0 "" "$K" train $MLP --steps 20 --log-every 10 --out "$R2" --quiet
cp "$R2/model.safetensors" "$T/r2.model"; cp "$R2/log.csv" "$T/r2.log"
expect 2 "holds a run" "$K" train $MLP --beta 2 --steps 20 --log-every 10 --out "$R2" --quiet
grep -q -- "--resume" "$T/err" && grep -q -- "--overwrite" "$T/err" && ok || bad "refusal does not point to --resume/--overwrite: $(cat "$T/err")"
cmp -s "$R2/model.safetensors" "$T/r2.model" && ok || bad "a refused train replaced the checkpoint"
cmp -s "$R2/log.csv" "$T/r2.log" && ok || bad "a refused train appended to the log"
expect 0 "" "$K" train $MLP --beta 2 --steps 20 --log-every 10 --out "$R2" --overwrite --quiet
[ "$(wc -l < "$R2/log.csv")" = 3 ] && ok || bad "--overwrite: log.csv has $(wc -l < "$R2/log.csv") lines, want 3"
cmp -s "$R2/model.safetensors" "$T/r2.model" && bad "--overwrite kept the old checkpoint" || ok
expect 1 "exclude" "$K" train --resume "$R2" --overwrite

# two writers: the second is refused with the first one's pid, whatever it asks
"$K" train $MLP --steps 100000000 --log-every 100000000 --out "$T/busy" --quiet >/dev/null 2>&1 &
pid=$!
if wait_for "$T/busy/config.json"; then
  sleep 0.2
  expect 2 "in use by process $pid" "$K" train $MLP --steps 20 --out "$T/busy" --overwrite --quiet
  expect 2 "in use by process $pid" "$K" train --resume "$T/busy" --steps 200000000 --quiet
  expect 2 "in use by process $pid" "$K" train $MLP --steps 20 --out "$T/busy" --quiet
else
  bad "the first writer never wrote config.json"
fi
kill -INT $pid; wait $pid; rc=$?
[ "$rc" = 130 ] && ok || bad "the first writer was disturbed: exit $rc, want 130"
expect 0 "" "$K" train --resume "$T/busy" --steps $(( $(ckpt_step "$T/busy") + 5 )) --quiet

# ---- fault 3: killed and resumed reads as if never stopped --------------------------------
RUNF="--steps 1500 --log-every 10 --ckpt-every 100"
expect 0 "" "$K" train $MLP $RUNF --out "$T/full" --quiet
"$K" train $MLP $RUNF --out "$T/kill" --quiet >/dev/null 2>&1 &
pid=$!
wait_for "$T/kill/model.safetensors"
sleep 0.3
kill -KILL $pid; wait $pid 2>/dev/null
at=$(ckpt_step "$T/kill")
last=$(tail -1 "$T/kill/log.csv" | cut -d, -f1)
if [ -n "$at" ] && [ "$at" -lt 1500 ] 2>/dev/null; then ok; else bad "the kill came too late (checkpoint at '$at'): the test proves nothing"; fi
echo "killed at checkpoint $at, last log row $last"
expect 0 "" "$K" train --resume "$T/kill" --quiet
cut -d, -f1,4- "$T/full/log.csv" > "$T/full.rows"; cut -d, -f1,4- "$T/kill/log.csv" > "$T/kill.rows"
cmp -s "$T/full.rows" "$T/kill.rows" && ok || bad "killed+resumed log differs from an uninterrupted one: $(diff "$T/full.rows" "$T/kill.rows" | head -5)"
cmp -s "$T/full/model.safetensors" "$T/kill/model.safetensors" && ok || bad "killed+resumed checkpoint bytes differ from an uninterrupted run's"
awk -F, 'NR > 2 && $2 + 0 < prev { bad = 1 } NR > 1 { prev = $2 + 0 } END { exit bad }' "$T/kill/log.csv" && ok || bad "seconds go backwards in the resumed log"
awk -F, -v at="$at" 'NR > 1 && $1 + 0 > at + 0 && $2 + 0 < 0.0005 { bad = 1 } END { exit bad }' "$T/kill/log.csv" && ok || bad "seconds restart at 0 on resume"

# stopped before the first row: the log still gets its header
"$K" train $MLP --steps 100000000 --log-every 100000000 --out "$T/hdr" --quiet >/dev/null 2>&1 &
pid=$!
wait_for "$T/hdr/config.json"; sleep 1
kill -INT $pid; wait $pid
at=$(ckpt_step "$T/hdr")
expect 0 "" "$K" train --resume "$T/hdr" --steps $((at + 20)) --log-every 10 --quiet
head -1 "$T/hdr/log.csv" | grep -q "^step,seconds," && ok || bad "log.csv lacks its header: $(head -1 "$T/hdr/log.csv")"

# ---- fault 4: resumable settings take effect, others are refused by flag ------------------
R4="$T/r4"
expect 0 "" "$K" train $MLP --steps 20 --log-every 10 --ckpt-every 10 --out "$R4" --quiet
expect 0 "2 threads" "$K" train --resume "$R4" --steps 40 --log-every 5 --ckpt-every 7 --threads 2
[ "$(cut -d, -f1 "$R4/log.csv" | tr '\n' ' ')" = "step 10 20 25 30 35 40 " ] && ok || bad "--log-every on resume ignored: steps $(cut -d, -f1 "$R4/log.csv" | tr '\n' ' ')"
"$K" info "$R4" > "$T/info4" 2>&1
grep -q '"ckpt_every":[[:space:]]*7,' "$T/info4" && ok || bad "--ckpt-every on resume not recorded: $(grep ckpt_every "$T/info4")"
grep -q '"threads":[[:space:]]*2,' "$R4/config.json" && ok || bad "--threads on resume not recorded"
grep -q '"log_every":[[:space:]]*5,' "$R4/config.json" && ok || bad "config.json lacks the new log_every"
expect 1 "--seed" "$K" train --resume "$R4" --seed 9
expect 1 "--lr" "$K" train --resume "$R4" --lr 0.1
expect 1 "steps" "$K" train --resume "$R4" --steps 30
expect 0 "1 thread ->" "$K" train $MLP --steps 4 --log-every 2 --out "$T/one"
grep -q "1 threads" "$T/out" && bad "says '1 threads'" || ok

# ---- fault 6: non-finite checkpoints are refused at load ----------------------------------
# put a float at element 0 of the first tensor (the data section starts after the header)
poke() { # poke FILE HEX4 (little-endian bytes as printf escapes)
  n=$(od -An -tu4 -N4 "$1" | tr -d ' ')
  printf "$2" | dd of="$1" bs=1 seek=$((8 + n)) conv=notrunc 2>/dev/null
}
cp -r "$R4" "$T/nan"; poke "$T/nan/model.safetensors" '\000\000\300\177'
cp -r "$R4" "$T/inf"; poke "$T/inf/model.safetensors" '\000\000\200\177'
first=encoder.fc1.weight  # the first tensor of the file: its data start the data section
expect 2 "holds NaN" "$K" info "$T/nan"
grep -q "$first" "$T/err" && ok || bad "the NaN refusal does not name the tensor $first: $(cat "$T/err")"
expect 2 "holds Inf" "$K" info "$T/inf"
expect 0 "40 of 40" "$K" info --allow-nonfinite "$T/nan"
expect 2 "holds NaN" "$K" encode --model "$T/nan" --n 10 --out "$T/c.npy"
expect 2 "holds NaN" "$K" traverse --model "$T/nan" --out "$T/t.png"
expect 2 "holds NaN" "$K" train --resume "$T/nan" --steps 50 --quiet
cp -r "$R4" "$T/nanopt"; poke "$T/nanopt/optimizer.safetensors" '\000\000\300\177'
expect 2 "holds NaN" "$K" train --resume "$T/nanopt" --steps 50 --quiet

# ---- fault 10: model.safetensors is exactly the PyTorch module's state_dict ---------------
if /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
  for arch in mlp conv; do
    expect 0 "" "$K" train --arch $arch --hidden 16 --latents 3 --batch 8 --threads 1 --steps 5 --out "$T/pt-$arch" --quiet
    # the same 6 observations: export and encode both draw knobs_data_draw(d, 6, 2, 0)
    expect 0 "" "$K" data export dsprites --n 6 --seed 2 --out "$T/x-$arch.npy"
    expect 0 "" "$K" encode --model "$T/pt-$arch" --n 6 --seed 2 --out "$T/codes-$arch.npy"
    expect 0 "strict load ok" /usr/bin/python3 "$TESTS/torch_load.py" "$T/pt-$arch/model.safetensors" "$T/x-$arch.npy" "$T/codes-$arch.npy"
  done
else
  S=$((S + 1)); echo "skip: python3-torch not installed (the strict PyTorch load of model.safetensors)"
fi

# ---- --init: a new run from another run's weights; a missing or mismatched one is refused ----
expect 0 "" "$K" train $MLP --steps 10 --log-every 5 --out "$T/i0" --quiet
expect 0 "" "$K" train $MLP --steps 10 --log-every 5 --init "$T/i0" --out "$T/i1" --quiet
grep -q '"init":' "$T/i1/config.json" && ok || bad "config.json does not record init"
expect 2 "no-such-run" "$K" train $MLP --steps 10 --init "$T/no-such-run" --out "$T/i2" --quiet
[ -e "$T/i2/config.json" ] && bad "a refused --init wrote $T/i2/config.json" || ok
expect 2 "weight" "$K" train --arch mlp --hidden 16 --latents 4 --batch 8 --threads 1 --steps 10 --init "$T/i0" --out "$T/i3" --quiet

# ---- ivae on physics:nonlinear: the classes of u come from the data, on resume too ----------
IV="--model ivae --data physics:nonlinear --arch mlp --hidden 16 --latents 3 --batch 8 --threads 1 --seed 5 --log-every 10"
expect 0 "" "$K" train $IV --steps 40 --out "$T/iv-full" --quiet
expect 0 "" "$K" train $IV --steps 20 --out "$T/iv-part" --quiet
expect 0 "" "$K" train --resume "$T/iv-part" --steps 40 --quiet
cmp -s "$T/iv-full/model.safetensors" "$T/iv-part/model.safetensors" && ok || bad "ivae: resumed checkpoint bytes differ from an uninterrupted run's"
grep -q '"aux_classes":[[:space:]]*40,' "$T/iv-full/config.json" && ok || bad "ivae: aux_classes not taken from the data's 40 segments"
expect 1 "no factor 'segment'" "$K" train --model ivae --data physics --steps 5 --out "$T/iv-bad" --quiet

chmod -R 700 "$T"; rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
