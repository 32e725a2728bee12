#!/bin/sh
# test_cli_seq.sh: the user's own sequences end to end: `knobs data export` of dsprites:seq:3
# writes (N,T,1,H,W), read back as seq:FILE with its factors file; a tiny dsvae trained on it;
# `knobs swap`, `knobs traverse` (f, z_t, GIF) and `knobs encode --dynamic` on that run; and the
# pictures of a per-frame model on that data (reconstruct, sample, traverse) and `data show`
# draw each sequence as its frames side by side in gray; the
# refusals (exit 1 for a usage error, 2 for bad data, the file named, nothing written): plain
# images for a dsvae, seq: of one frame, factors of another row count, a truncated file.
# Usage: sh tests/test_cli_seq.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-seqcli-XXXXXX)
. "$(dirname "$0")/lib.sh"
# npy_shape FILE: the shape tuple in a .npy header
npy_shape() { head -c 128 "$1" | LC_ALL=C tr -d '\000' | LC_ALL=C sed -n "s/.*'shape': (\([^)]*\)).*/\1/p"; }
is_png() { [ "$(head -c 4 "$1" | tail -c 3)" = "PNG" ]; }
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }'; }

# the data: 24 sequences of 3 frames of 64x64, uint8, and their factors
expect 0 "wrote" "$K" data export dsprites:seq:3 --n 24 --seed 4 --dtype uint8 --out "$T/clips.npy" --factors "$T/f.npy"
[ "$(npy_shape "$T/clips.npy")" = "24, 3, 1, 64, 64" ] && ok || bad "clips.npy shape $(npy_shape "$T/clips.npy")"
expect 0 "3 frames of 1 channel" "$K" data info "seq:$T/clips.npy" --data-factors "$T/f.npy"
expect 0 "24 observations" "$K" data info "seq:$T/clips.npy"
expect 2 "open them as seq:" "$K" data info "$T/clips.npy"
expect 0 "seq:\*.npy" "$K" data list

# a tiny dsvae on it (mlp: fast)
RUN="$T/run"
expect 0 "" "$K" train --model dsvae --data "seq:$T/clips.npy" --data-factors "$T/f.npy" --arch mlp --hidden 32 \
  --latents 2 --f-dim 4 --rnn-hidden 16 --batch 4 --steps 20 --threads 2 --seed 1 --out "$RUN" --quiet
[ -s "$RUN/model.safetensors" ] && ok || bad "the run has no model.safetensors"
is_png "$RUN/traversal.png" && ok || bad "the run has no traversal.png (its f traversal)"
[ -e "$RUN/reconstructions.png" ] && bad "a sequence run drew its frames as one image" || ok

# swap and traverse
expect 0 "wrote" "$K" swap --model "$RUN" --pairs 2 --out "$T/swap.png"
is_png "$T/swap.png" && ok || bad "swap.png is not a PNG"
expect 0 "static code f's dimensions" "$K" traverse --model "$RUN" --out "$T/t.png" --range -2:2:5 --index 3
[ "$(png_size "$T/t.png")" = "332x266" ] && ok || bad "t.png is $(png_size "$T/t.png"), want 5 x 4 cells of 64 + pads: 332x266"
expect 0 "row  4  f" "$K" traverse --model "$RUN" --out "$T/t2.png" --frame 2
expect 0 "dynamic code's dimensions" "$K" traverse --model "$RUN" --out "$T/tz.png" --dynamic --range -1:1:3
[ "$(png_size "$T/tz.png")" = "200x134" ] && ok || bad "tz.png is $(png_size "$T/tz.png"), want 3 x 2 cells: 200x134"
expect 0 "wrote" "$K" traverse --model "$RUN" --out "$T/t.gif"
[ "$(head -c 6 "$T/t.gif")" = "GIF89a" ] && ok || bad "t.gif is not a GIF"
expect 1 "frame 3 out of range 0..2" "$K" traverse --model "$RUN" --out "$T/bad.png" --frame 3
expect 1 "index 24 out of range" "$K" traverse --model "$RUN" --out "$T/bad.png" --index 24
expect 1 "--frame" "$K" traverse --model "$RUN" --out "$T/bad.png" --frame x

# encode: f and z_1:T, every row of the file in order
expect 0 "the dynamic codes" "$K" encode --model "$RUN" --out "$T/f_codes.npy" --dynamic "$T/z_codes.npy"
[ "$(npy_shape "$T/f_codes.npy")" = "24, 4" ] && ok || bad "f_codes.npy shape $(npy_shape "$T/f_codes.npy")"
[ "$(npy_shape "$T/z_codes.npy")" = "24, 3, 2" ] && ok || bad "z_codes.npy shape $(npy_shape "$T/z_codes.npy")"
expect 0 "" "$K" encode --model "$RUN" --out "$T/f_only.npy"
cmp -s "$T/f_only.npy" "$T/f_codes.npy" && ok || bad "--dynamic changed the static codes"
expect 2 "nonexistent" "$K" encode --model "$RUN" --out "$T/e1.npy" --dynamic /nonexistent-dir/z.npy
expect 1 "--sampled" "$K" encode --model "$RUN" --out "$T/e2.npy" --dynamic "$T/e2z.npy" --sampled
expect 1 "different files" "$K" encode --model "$RUN" --out "$T/e3.npy" --dynamic "$T/e3.npy"
for f in e1.npy e2.npy e2z.npy e3.npy bad.png; do [ -e "$T/$f" ] && bad "a refused command wrote $f" || ok; done

# a per-frame model on the same data: no sequence codes
expect 0 "" "$K" train --model betavae --data "seq:$T/clips.npy" --arch mlp --hidden 16 --latents 2 --batch 4 --steps 2 \
  --out "$T/bvae" --quiet
# pictures of sequences: each observation its 3 gray frames side by side (not one RGB image)
png_type() { od -An -tu1 -j25 -N1 "$1" | tr -d ' '; }
expect 0 "wrote" "$K" reconstruct --model "$T/bvae" --data "seq:$T/clips.npy" --n 4 --out "$T/rec.png"
[ "$(png_size "$T/rec.png") $(png_type "$T/rec.png")" = "778x134 0" ] && ok ||
  bad "rec.png is $(png_size "$T/rec.png") type $(png_type "$T/rec.png"), want 4 strips of 3x64 + pads, 2 rows, gray: 778x134 0"
expect 0 "wrote" "$K" sample --model "$T/bvae" --n 4 --out "$T/smp.png"
[ "$(png_size "$T/smp.png") $(png_type "$T/smp.png")" = "390x134 0" ] && ok || bad "smp.png is $(png_size "$T/smp.png") $(png_type "$T/smp.png")"
expect 0 "wrote" "$K" traverse --model "$T/bvae" --data "seq:$T/clips.npy" --out "$T/tb.png" --range -1:1:3
[ "$(png_size "$T/tb.png") $(png_type "$T/tb.png")" = "584x134 0" ] && ok || bad "tb.png is $(png_size "$T/tb.png") $(png_type "$T/tb.png")"
expect 0 "random observations" "$K" data show "seq:$T/clips.npy" --out "$T/show.png"
[ "$(png_type "$T/show.png")" = "0" ] && ok || bad "data show of gray sequences drew colour (type $(png_type "$T/show.png"))"
expect 0 "each row varies one factor" "$K" data show dsprites:seq:3 --out "$T/show2.png"
[ "$(png_size "$T/show2.png") $(png_type "$T/show2.png")" = "1942x398 0" ] && ok ||
  bad "show2.png is $(png_size "$T/show2.png") $(png_type "$T/show2.png"), want 10 strips of 3x64 by 6 factor rows, gray"
expect 1 "only a dsvae model has" "$K" encode --model "$T/bvae" --out "$T/e4.npy" --dynamic "$T/e4z.npy"
expect 1 "only a dsvae model has" "$K" traverse --model "$T/bvae" --out "$T/e5.png" --dynamic
[ -e "$T/e4.npy" ] || [ -e "$T/e5.png" ] && bad "a refused command wrote its output" || ok

# refusals of the data
expect 0 "wrote" "$K" data export dsprites --n 10 --out "$T/img.npy"
expect 1 "img.npy has 1 frame per observation" "$K" train --model dsvae --data "$T/img.npy" --steps 2 --out "$T/r1"
expect 2 "T = 1 frame" "$K" train --model dsvae --data "seq:$T/img.npy" --steps 2 --out "$T/r2"
expect 0 "wrote" "$K" data export dsprites:seq:3 --n 5 --out "$T/c5.npy" --factors "$T/f5.npy"
expect 2 "f5.npy has 5 rows but the data has 24" "$K" train --model dsvae --data "seq:$T/clips.npy" --data-factors "$T/f5.npy" \
  --steps 2 --out "$T/r3"
head -c 20000 "$T/clips.npy" > "$T/cut.npy"
expect 2 "truncated" "$K" data info "seq:$T/cut.npy"
expect 1 "seq: reads sequences" "$K" data info "seq:$T/f.csv"
for r in r1 r2 r3; do [ -e "$T/$r" ] && bad "a refused training made $r" || ok; done
ls "$T" | grep -q "tmp-" && bad "a temporary file was left" || ok

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
