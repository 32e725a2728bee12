#!/bin/sh
# test_cli_swap.sh: `knobs swap` end to end on tiny models trained here: a dsvae (factorised, a few
# steps on dsprites:seq:3) and a per-frame β-VAE (a few steps on dsprites, the baseline). The
# picture (PNG of the right size, GIF), the score of both models (printed lines, JSON fields; the
# dsvae has a generation test and no static latents, the baseline the reverse; the same bytes
# twice), and the refusals with nothing written: the baseline without --data, a picture of the
# baseline, --pairs with --score, --n without it, a .jpg, data other than dsprites:seq, an unknown flag.
# Usage: sh tests/test_cli_swap.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-swap-XXXXXX)
. "$(dirname "$0")/lib.sh"
absent() { [ ! -e "$1" ] && ok || bad "$1 was written after a failure"; }
png_wh() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }'; }
field() { sed -n "s/.*\"$2\": \([^,]*\),*$/\1/p" "$1" | head -n 1; }

expect 0 "" "$K" train --model dsvae --variant factorised --data dsprites:seq:3 --latents 2 --f-dim 3 --rnn-hidden 8 \
  --arch mlp --batch 2 --steps 3 --threads 1 --log-every 1 --out "$T/seq"
expect 0 "" "$K" train --data dsprites --arch mlp --latents 4 --batch 4 --steps 3 --threads 1 --log-every 1 --out "$T/vae"

# the picture: 3 frames wide, 4 rows of 2 pairs high, 2-pixel pads
expect 0 "wrote" "$K" swap --model "$T/seq" --pairs 2 --out "$T/swap.png"
[ "$(png_wh "$T/swap.png")" = "$((3 * 64 + 4 * 2))x$((8 * 64 + 9 * 2))" ] && ok || bad "swap.png is $(png_wh "$T/swap.png")"
expect 0 "wrote" "$K" swap --model "$T/seq" --pairs 2 --out "$T/swap.gif"
[ "$(head -c 6 "$T/swap.gif")" = "GIF89a" ] && ok || bad "swap.gif is not a GIF"

# the score of the dsvae
expect 0 "static accuracy (sequence)" "$K" swap --model "$T/seq" --score --n 3 --out "$T/s1.json"
grep -q "generation static accuracy" "$T/out" && ok || bad "no generation line for a dsvae"
[ "$(field "$T/s1.json" static_latents)" = "0" ] && ok || bad "a dsvae with static latents: $(field "$T/s1.json" static_latents)"
[ "$(field "$T/s1.json" frames)" = "18" ] && ok || bad "frames $(field "$T/s1.json" frames), want 2 x 3 x 3"
g=$(field "$T/s1.json" generation_static_accuracy)
[ -n "$g" ] && [ "$g" != "null" ] && ok || bad "generation of a dsvae is '$g'"
expect 0 "" "$K" swap --model "$T/seq" --score --n 3 --out "$T/s2.json"
sed 1,2d "$T/s1.json" >"$T/a"; sed 1,2d "$T/s2.json" >"$T/b"
cmp -s "$T/a" "$T/b" && ok || bad "two scores of one seed differ"

# the baseline: a per-frame model, on the sequences
expect 0 "most constant within sequences" "$K" swap --model "$T/vae" --data dsprites:seq:3 --score --n 2 --out "$T/b.json"
k=$(field "$T/b.json" static_latents)
[ "$k" -ge 1 ] 2>/dev/null && [ "$k" -le 3 ] && ok || bad "baseline static latents '$k' (want 1..3 of 4)"
[ "$(field "$T/b.json" generation_static_accuracy)" = "null" ] && ok || bad "a per-frame model has a generation test"
grep -q "generation static accuracy" "$T/out" && bad "a generation line for a per-frame model" || ok

# refusals, nothing written
expect 1 "--data" "$K" swap --model "$T/vae" --score --n 2 --out "$T/r1.json"; absent "$T/r1.json"
expect 2 "the model takes" "$K" swap --model "$T/vae" --data dsprites:seq:3 --pairs 2 --out "$T/r2.png"; absent "$T/r2.png"
expect 1 "--pairs" "$K" swap --model "$T/seq" --score --pairs 2 --out "$T/r3.json"; absent "$T/r3.json"
expect 1 "--n" "$K" swap --model "$T/seq" --n 4 --out "$T/r4.png"; absent "$T/r4.png"
expect 1 ".jpg" "$K" swap --model "$T/seq" --pairs 2 --out "$T/r5.jpg"; absent "$T/r5.jpg"
expect 2 "neither a dsvae" "$K" swap --model "$T/vae" --data dsprites --score --n 2 --out "$T/r6.json"; absent "$T/r6.json"
expect 1 "--frobnicate" "$K" swap --model "$T/seq" --frobnicate --out "$T/r7.png"; absent "$T/r7.png"

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
